"""Accounts and tokens over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import RefreshToken, User
from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.readers.models import Reader

EMAIL = "Ada@Example.org"
PASSWORD = "violet-harbour-tandem-41"


def register(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/register", json={"email": email, "password": password})


def login(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def audit_actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.event_id)))


def test_register_login_me(bare_client: TestClient, engine: Engine) -> None:
    created = register(bare_client)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "ada@example.org" and user["role"] == "reader"
    assert not {"password", "password_hash"} & set(user)

    tokens = login(bare_client, email="  ADA@example.ORG ").json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    me = bare_client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json() == user

    with Session(engine) as session:
        stored = session.scalars(select(User)).one()
        assert stored.password_hash.startswith("$argon2id$")
        assert session.get(Reader, stored.reader_id) is not None
        token_row = session.scalars(select(RefreshToken)).one()
        assert token_row.token_hash != tokens["refresh_token"] and len(token_row.token_hash) == 64
    assert audit_actions(engine) == ["user.register", "auth.login"]


def test_duplicate_email_is_a_conflict_that_says_no_more(bare_client: TestClient) -> None:
    assert register(bare_client).status_code == 201
    again = register(bare_client, email="ada@EXAMPLE.org", password="another-long-passphrase-7")
    assert again.status_code == 409
    body = again.json()
    assert body["field"] == "email"
    assert "already exists" in body["detail"]
    assert "user_id" not in body and "role" not in body


def test_unknown_email_and_wrong_password_look_the_same(
    bare_client: TestClient, engine: Engine
) -> None:
    register(bare_client)
    wrong = login(bare_client, password="not-the-password-at-all")
    unknown = login(bare_client, email="nobody@example.org")
    for response in (wrong, unknown):
        assert_unauthorized(response)

    def shape(response: Any) -> dict[str, Any]:
        return {k: v for k, v in response.json().items() if k != "request_id"}

    assert shape(wrong) == shape(unknown)
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    # the refusals are audited even though the request failed
    assert audit_actions(engine) == ["user.register", "auth.login_failed", "auth.login_failed"]


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("short", "at least 10 characters"),
        ("password123", "too easy to guess"),
        ("ada-bookrec-99-ada", "name part of your email"),
    ],
)
def test_weak_passwords_are_refused(bare_client: TestClient, password: str, words: str) -> None:
    response = register(bare_client, password=password)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["field"] == "password" and words in body["detail"]


def test_bad_email_and_oversized_password_are_refused(bare_client: TestClient) -> None:
    bad_email = register(bare_client, email="not-an-email")
    assert bad_email.status_code == 422 and bad_email.json()["field"] == "email"
    huge = register(bare_client, password="x" * 10_000)
    assert huge.status_code == 422
    assert huge.json()["errors"][0]["field"] == "body.password"


def test_refresh_rotates_and_reuse_revokes_the_family(
    bare_client: TestClient, engine: Engine
) -> None:
    register(bare_client)
    first = login(bare_client).json()
    second = bare_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.text
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert bare_client.get("/api/v1/me", headers=bearer(second_tokens["access_token"])).is_success

    # an unrelated login (another device) must survive the theft of this one
    other_device = login(bare_client).json()

    reused = bare_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert_unauthorized(reused)
    assert "already used" in reused.json()["detail"]
    # the newest refresh token of the family no longer works, nor its access tokens
    newest = bare_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]}
    )
    assert_unauthorized(newest)
    assert_unauthorized(
        bare_client.get("/api/v1/me", headers=bearer(second_tokens["access_token"]))
    )
    assert bare_client.get("/api/v1/me", headers=bearer(other_device["access_token"])).is_success
    assert "auth.refresh_reuse" in audit_actions(engine)


def test_unknown_refresh_token_is_refused(bare_client: TestClient) -> None:
    assert_unauthorized(bare_client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"}))


def test_logout_ends_the_login(bare_client: TestClient, engine: Engine) -> None:
    register(bare_client)
    tokens = login(bare_client).json()
    assert_unauthorized(bare_client.post("/api/v1/auth/logout"))
    out = bare_client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert out.status_code == 204
    assert_unauthorized(
        bare_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    )
    assert_unauthorized(bare_client.get("/api/v1/me", headers=bearer(tokens["access_token"])))
    assert audit_actions(engine)[-1] == "auth.logout"


def test_bad_access_tokens_are_refused(bare_client: TestClient, settings: Settings) -> None:
    register(bare_client)
    good = login(bare_client).json()["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    key = settings.secret_key.get_secret_value()
    now = utcnow()
    header, payload, _ = good.split(".")
    forged = [
        "garbage",
        f"{header}.{payload}.",
        jwt.encode({**claims, "role": "admin"}, "an-attacker-key-of-32-characters!!"),
        jwt.encode({**claims, "aud": "someone-else"}, key),
        jwt.encode(
            {**claims, "iat": now - timedelta(hours=1), "exp": now - timedelta(minutes=1)}, key
        ),
        jwt.encode({**claims, "sub": "999"}, key),
    ]
    none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    forged.append(f"{none_header}.{payload}.")
    for token in forged:
        response = bare_client.get("/api/v1/me", headers=bearer(token))
        assert_unauthorized(response)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert_unauthorized(bare_client.get("/api/v1/me"))
    assert_unauthorized(bare_client.get("/api/v1/me", headers={"Authorization": "Basic eDp5"}))


def test_disabled_account_cannot_log_in_or_use_tokens(
    bare_client: TestClient, engine: Engine
) -> None:
    register(bare_client)
    tokens = login(bare_client).json()
    with Session(engine) as session, session.begin():
        session.scalars(select(User)).one().disabled = True
    assert_unauthorized(bare_client.get("/api/v1/me", headers=bearer(tokens["access_token"])))
    assert login(bare_client).json()["detail"] == "email or password is wrong"


def test_unknown_email_still_pays_for_a_password_check(
    bare_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bookrec.accounts import passwords

    checked: list[str] = []
    real = passwords.verify_password

    def spy(hasher: Any, password_hash: str, password: str) -> Any:
        checked.append(password_hash)
        return real(hasher, password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    assert_unauthorized(login(bare_client, email="nobody@example.org"))
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")
