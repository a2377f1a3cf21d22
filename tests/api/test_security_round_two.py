"""Security round two, as an attacker or an erased reader meets it, on SQLite and PostgreSQL:
no id reuse, no lock-out by strangers, bounded events, erasure reaching derived data, and the
smaller findings (huge `sub`, 500 headers, readiness paths, no-store, bounded filters)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from tests.fixtures.accounts import PASSWORD

from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.tokens import TokenConfig
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.model_registry import files
from bookrec.model_registry.models import ModelVersionRow
from bookrec.model_registry.registry import ModelRegistry
from bookrec.readers.models import Event
from bookrec.serving.precomputed import PrecomputedLists
from bookrec.training.service import train

API = "/api/v1"


def register(client: TestClient, email: str) -> dict[str, Any]:
    response = client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def bearer(client: TestClient, email: str) -> dict[str, str]:
    response = login(client, email)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def erase(client: TestClient, headers: dict[str, str], password: str = PASSWORD) -> Any:
    return client.request("DELETE", f"{API}/me", json={"password": password}, headers=headers)


# -- 1. ids are never reused; erase anonymises; an export covers the account's lifetime ------


def test_an_erased_accounts_ids_and_history_never_reach_a_newcomer(
    bare_client: TestClient, engine: Engine
) -> None:
    register(bare_client, "first@example.org")
    erased = register(bare_client, "newest@example.org")
    assert login(bare_client, "newest@example.org", "a-wrong-password-here").status_code == 401
    assert erase(bare_client, bearer(bare_client, "newest@example.org")).status_code == 204

    newcomer = register(bare_client, "newcomer@example.org")
    assert newcomer["user_id"] > erased["user_id"]
    assert newcomer["reader_id"] > erased["reader_id"]

    export = bare_client.get(
        f"{API}/me/export", headers=bearer(bare_client, "newcomer@example.org")
    )
    assert export.status_code == 200, export.text
    events = export.json()["audit_events"]
    assert {e["action"] for e in events} == {"user.register", "auth.login"}
    assert all(e["target"] == f"user:{newcomer['user_id']}" for e in events)

    with Session(engine) as session:
        rows = session.scalars(select(AuditEvent)).all()
    named = ("user:erased", f"user:{erased['user_id']}", "newest@example.org")
    about_erased = [r for r in rows if r.target in named]
    assert {r.action for r in about_erased} >= {"user.register", "auth.login_failed"}
    for row in about_erased:
        assert row.target == "user:erased" and row.ip is None and row.request_id is None
        assert row.actor_user_id is None
        if row.action != "account.erase":
            assert not row.details


# -- 2. strangers' wrong passwords never lock the owner out -----------------------------------


def test_wrong_passwords_from_five_addresses_do_not_stop_the_owner(bare_client: TestClient) -> None:
    register(bare_client, "owner@example.org")
    app = bare_client.app
    for address in range(5):
        attacker = TestClient(app, client=(f"198.51.100.{address}", 5000))
        statuses = [
            login(attacker, "owner@example.org", f"guess-number-{n}").status_code for n in range(6)
        ]
        assert statuses == [401] * 5 + [429]  # per (account, address)
    owner = TestClient(app, client=("192.0.2.7", 5000))
    assert login(owner, "owner@example.org").status_code == 200


def test_a_device_that_logged_in_before_passes_an_exhausted_account_limit(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"rate_limit_login_account": "8/hour"})
    with TestClient(create_app(limited)) as setup:
        register(setup, "owner@example.org")
        app = setup.app
        known = TestClient(app, client=("192.0.2.7", 5000))
        assert login(known, "owner@example.org").status_code == 200
        assert known.cookies.get("bookrec_device")
        for address in range(4):
            attacker = TestClient(app, client=(f"198.51.100.{address}", 5000))
            for n in range(2):
                assert login(attacker, "owner@example.org", f"guess-{n}").status_code == 401
        new_device = TestClient(app, client=("192.0.2.8", 5000))
        refused = login(new_device, "owner@example.org")
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert login(known, "owner@example.org").status_code == 200


# -- 3. events: quota, retention, streamed export ---------------------------------------------


@pytest.fixture
def quota_client(loaded: Settings) -> Iterator[TestClient]:
    small = loaded.model_copy(update={"event_quota_per_reader": 100})
    with TestClient(create_app(small)) as client:
        yield client


def test_events_are_bounded_per_reader_and_expire(quota_client: TestClient, engine: Engine) -> None:
    account = register(quota_client, "busy@example.org")
    headers = bearer(quota_client, "busy@example.org")
    batch = {"events": [{"kind": "view", "book_id": 1 + i % 20} for i in range(100)]}
    assert quota_client.post(f"{API}/events", json=batch, headers=headers).status_code == 202
    one = {"events": [{"kind": "click", "book_id": 2}]}
    refused = quota_client.post(f"{API}/events", json=one, headers=headers)
    assert refused.status_code == 429, refused.text
    assert "event quota reached" in refused.json()["detail"]

    long_ago = int(time.time()) - 91 * 86400  # past BOOKREC_EVENT_RETENTION_DAYS (90)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Event)
            .where(Event.reader_id == account["reader_id"])
            .values(occurred_at=long_ago)
        )
    assert quota_client.post(f"{API}/events", json=one, headers=headers).status_code == 202

    export = quota_client.get(f"{API}/me/export", headers=headers)
    assert export.status_code == 200 and "content-length" not in export.headers  # streamed
    assert export.headers["cache-control"] == "no-store"
    document = json.loads(export.content)
    assert [e["kind"] for e in document["events"]] == ["click"]
    assert document["account"]["email"] == "busy@example.org"


# -- 4. erase reaches precomputed lists and caches at once -----------------------------------


def test_erase_wipes_the_readers_precomputed_and_cached_lists(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    account = register(client, "leaving@example.org")
    headers = bearer(client, "leaving@example.org")
    for book, stars in ((1, 5), (2, 4), (7, 5)):
        client.put(f"{API}/me/ratings/{book}", json={"rating": stars}, headers=headers)
    registry = ModelRegistry(loaded.models_dir)
    version = train(engine, registry, "itemknn", settings=loaded).version
    lists_dir = version.path / "lists"
    before = PrecomputedLists.load(lists_dir)
    assert before is not None and account["reader_id"] in before.reader_ids.tolist()

    cached = client.get(f"{API}/recommendations/me", params={"explain": "true"}, headers=headers)
    assert cached.status_code == 200
    cache = client.app.state.bookrec.serving.cache
    assert (
        client.get(
            f"{API}/recommendations/me", params={"explain": "true"}, headers=headers
        ).headers["x-cache"]
        == "hit"
    )

    assert erase(client, headers).status_code == 204

    after = PrecomputedLists.load(lists_dir)
    assert after is not None
    row = int(np.searchsorted(after.reader_ids, account["reader_id"]))
    assert (after.book_ids[row] == -1).all() and after.activity_versions[row] == -1
    assert np.array_equal(np.delete(after.book_ids, row, 0), np.delete(before.book_ids, row, 0))
    assert cache.forget_reader(account["reader_id"]) == 0  # nothing left to drop
    with Session(engine) as session:
        files.verify(version.path, registry.get(session, version.number).checksums)


# -- 5. the smaller findings ------------------------------------------------------------------


def test_a_token_with_a_huge_sub_is_a_401(bare_client: TestClient, settings: Settings) -> None:
    import jwt

    config = TokenConfig.of(settings)
    now = int(time.time())
    claims = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": str(10**30),
        "role": "reader",
        "sid": "x",
        "jti": "y",
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, config.secret_key, algorithm="HS256")
    response = bare_client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_500_carries_the_security_headers_and_request_id(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-42"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["request_id"] == "trace-42"


def test_readiness_names_no_file_path(client: TestClient, loaded: Settings) -> None:
    model_files = sorted((loaded.models_dir / "1" / "popular").glob("*.npy"))
    model_files[0].write_bytes(b"tampered")
    with TestClient(create_app(loaded)) as fresh:
        body = fresh.get("/health/ready").json()
    text = json.dumps(body)
    assert "fails its sha256 checksum" in text or "missing" in text, text
    assert str(loaded.var_dir) not in text and "/models/" not in text


def test_personal_and_admin_answers_are_never_cached(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    from tests.fixtures.accounts import signed_in

    admin = signed_in(client, engine, settings, "ops@example.org", role="admin")
    created = client.post(
        f"{API}/admin/api-keys",
        json={"name": "shop", "scopes": ["recommendations:read"]},
        headers=admin,
    )
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    key = {"X-API-Key": created.json()["key"]}
    listing = client.get(f"{API}/recommendations/users/1", headers=key)
    assert listing.status_code == 200 and listing.headers["cache-control"] == "no-store"
    batch = client.post(f"{API}/recommendations/batch", json={"user_ids": [1]}, headers=key)
    assert batch.headers["cache-control"] == "no-store"
    assert "no-store" not in client.get(f"{API}/recommendations/popular").headers.get(
        "cache-control", ""
    )


def test_filter_names_are_bounded(client: TestClient) -> None:
    for name in ("tag", "exclude_author"):
        response = client.get(f"{API}/recommendations/popular", params={name: "x" * 201})
        assert response.status_code == 422, (name, response.text)


def test_erase_asks_for_the_password(bare_client: TestClient) -> None:
    register(bare_client, "careful@example.org")
    headers = bearer(bare_client, "careful@example.org")
    assert bare_client.delete(f"{API}/me", headers=headers).status_code == 422
    wrong = erase(bare_client, headers, "not-my-password-at-all")
    assert wrong.status_code == 403 and wrong.json()["field"] == "password"
    assert bare_client.get(f"{API}/me", headers=headers).status_code == 200
    assert erase(bare_client, headers).status_code == 204


def test_the_address_limit_counts_every_account_on_it(settings: Settings) -> None:
    tight = settings.model_copy(
        update={"rate_limit_general": "50/minute", "rate_limit_general_address": "6/minute"}
    )
    with TestClient(create_app(tight)) as client:
        headers = [
            {"Authorization": f"Bearer {_token(client, f'u{i}@example.org')}"} for i in range(3)
        ]
        statuses = [client.get(f"{API}/me", headers=headers[n % 3]).status_code for n in range(9)]
    assert statuses == [200] * 6 + [429] * 3


def _token(client: TestClient, email: str) -> str:
    register(client, email)
    return str(login(client, email).json()["access_token"])


def test_audit_rows_hold_only_sane_request_ids(bare_client: TestClient, engine: Engine) -> None:
    bare_client.post(
        f"{API}/auth/register",
        json={"email": "odd@example.org", "password": PASSWORD},
        headers={"X-Request-ID": "x" * 300},
    )
    with Session(engine) as session:
        ids = [r.request_id for r in session.scalars(select(AuditEvent))]
    assert ids and all(i is None or (len(i) <= 64 and i.isascii()) for i in ids)


def test_version_pruning_deletes_old_artifacts(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    registry = ModelRegistry(loaded.models_dir)
    train(engine, registry, "itemknn", force=True, settings=loaded)  # 2 active, 1 retired
    month_ago = datetime.now(UTC) - timedelta(days=31)
    with Session(engine) as session, session.begin():
        session.execute(
            update(ModelVersionRow).where(ModelVersionRow.version == 1).values(created_at=month_ago)
        )
    train(engine, registry, "itemknn", force=True, settings=loaded)
    with Session(engine) as session:
        first = registry.get(session, 1)
    assert first.status == "pruned" and "30 days" in (first.status_reason or "")
    assert not Path(first.path).exists()
