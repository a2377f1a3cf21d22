"""Access policy: every admin route refuses strangers and readers; API keys for app backends.

The admin check walks the app's route table, so a route added under /api/v1/admin later is
covered without touching this file. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bookrec.accounts import service as accounts
from bookrec.accounts.api_keys import ApiKey, hash_key
from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import User
from bookrec.catalog.models import Book
from bookrec.config import Settings
from bookrec.readers.models import Rating, Reader

ADMIN_PREFIX = "/api/v1/admin"
ADMIN_EMAIL = "root@example.org"
READER_EMAIL = "reader@example.org"
PASSWORD = "violet-harbour-tandem-41"
KEYS = f"{ADMIN_PREFIX}/api-keys"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    if status == 401:
        assert response.headers["www-authenticate"]


def token_for(client: TestClient, email: str) -> str:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def tokens(client: TestClient, engine: Engine, loaded: Settings) -> dict[str, str]:
    """Access tokens of one admin and one reader."""
    auth = accounts.Authenticator.of(loaded)
    with Session(engine) as session, session.begin():
        accounts.register(session, auth, ADMIN_EMAIL, PASSWORD, role="admin")
        accounts.register(session, auth, READER_EMAIL, PASSWORD)
    return {"admin": token_for(client, ADMIN_EMAIL), "reader": token_for(client, READER_EMAIL)}


@pytest.fixture
def dataset_user(engine: Engine) -> int:
    """A data set user id that has ratings."""
    with Session(engine) as session:
        query = (
            select(Reader.external_id)
            .join(Rating, Rating.reader_id == Reader.reader_id)
            .where(Reader.external_id.is_not(None))
            .order_by(Reader.external_id)
            .limit(1)
        )
        user_id = session.scalar(query)
    assert user_id is not None
    return int(user_id)


def admin_operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every admin route, path parameters filled with dummy values.

    `app.routes` nests included routers; `iter_route_contexts` flattens them with their
    effective (prefixed) paths. The OpenAPI document must not know an admin operation the walk
    missed.
    """
    app: Any = client.app
    walked = {
        (method, str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and str(context.path).startswith(ADMIN_PREFIX)
        for method in context.methods or ()
    }
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(ADMIN_PREFIX)
        for method in operations
    }
    assert documented <= walked
    assert {("GET", f"{ADMIN_PREFIX}/stats"), ("POST", KEYS), ("GET", KEYS)} <= walked
    return sorted((method, re.sub(r"\{[^}]+\}", "1", path)) for method, path in walked)


def test_every_admin_route_refuses_strangers_and_readers(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for method, path in admin_operations(client):
        anonymous = client.request(method, path, json={})
        assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer"), (method, path)
        assert_problem(client.request(method, path, json={}, headers=bearer("garbage")), 401)
        reader = client.request(method, path, json={}, headers=bearer(tokens["reader"]))
        assert_problem(reader, 403)


def test_admin_stats(client: TestClient, tokens: dict[str, str], engine: Engine) -> None:
    response = client.get(f"{ADMIN_PREFIX}/stats", headers=bearer(tokens["admin"]))
    assert response.status_code == 200, response.text
    stats = response.json()
    with Session(engine) as session:

        def count(model: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        expected = {
            "books": count(Book),
            "readers": count(Reader),
            "ratings": count(Rating),
            "accounts": count(User),
        }
    assert {name: stats[name] for name in expected} == expected
    assert stats["accounts"] == 2 and stats["books"] > 0 and stats["ratings"] > 0
    assert stats["model_version"] and stats["model_algo"] == "popularity"


def test_api_key_lifecycle(
    client: TestClient, tokens: dict[str, str], engine: Engine, dataset_user: int
) -> None:
    admin = bearer(tokens["admin"])
    created = client.post(
        KEYS, json={"name": "shop backend", "scopes": ["recommendations:read"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("brk_") and body["prefix"] == key[4:12]
    assert body["scopes"] == ["recommendations:read"] and body["revoked_at"] is None

    with Session(engine) as session:
        stored = session.get(ApiKey, body["key_id"])
        assert stored is not None
        assert stored.key_hash != key
        assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest() == hash_key(key)

    listed = client.get(KEYS, headers=admin)
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    assert key not in listed.text and key[12:] not in listed.text
    assert not {"key", "key_hash"} & set(listed.json()["items"][0])

    path = f"/api/v1/recommendations/users/{dataset_user}"
    served = client.get(path, params={"k": 5}, headers=api_key(key))
    assert served.status_code == 200, served.text
    assert served.headers["x-model-version"] == str(served.json()["model_version"])
    items = served.json()["items"]
    assert 0 < len(items) <= 5 and {"book_id", "title", "authors", "score"} <= set(items[0])
    assert client.get(KEYS, headers=admin).json()["items"][0]["last_used_at"] is not None

    batch = client.post(
        "/api/v1/recommendations/batch",
        json={"user_ids": [dataset_user, 999_999_999, dataset_user], "k": 3},
        headers=api_key(key),
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()
    assert [r["user_id"] for r in results["results"]] == [dataset_user]
    assert results["unknown_user_ids"] == [999_999_999]
    assert [i["book_id"] for i in results["results"][0]["items"]] == [
        i["book_id"] for i in items[:3]
    ]

    assert client.delete(f"{KEYS}/{body['key_id']}", headers=admin).status_code == 204
    assert_problem(client.get(path, headers=api_key(key)), 401)
    assert client.get(KEYS, headers=admin).json()["items"][0]["revoked_at"] is not None
    assert_problem(client.delete(f"{KEYS}/999999", headers=admin), 404)

    with Session(engine) as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.event_id)))
    assert actions.count("api_key.create") == 1 and actions.count("api_key.revoke") == 1


def test_server_to_server_routes_refuse_the_wrong_callers(
    client: TestClient, tokens: dict[str, str], engine: Engine, dataset_user: int
) -> None:
    secret = "brk_unscoped-key-for-this-test-only"
    with Session(engine) as session, session.begin():
        session.add(ApiKey(name="no scope", prefix=secret[4:12], key_hash=hash_key(secret)))
    path = f"/api/v1/recommendations/users/{dataset_user}"
    batch = "/api/v1/recommendations/batch"
    body = {"user_ids": [dataset_user]}

    for response in (client.get(path), client.post(batch, json=body)):
        assert_problem(response, 401)
    for headers in (api_key("brk_not-a-key"), api_key("nonsense"), bearer("garbage")):
        assert_problem(client.get(path, headers=headers), 401)
    for headers in (api_key(secret), bearer(tokens["reader"])):
        assert_problem(client.get(path, headers=headers), 403)
        assert_problem(client.post(batch, json=body, headers=headers), 403)

    admin = bearer(tokens["admin"])
    assert client.get(path, headers=admin).status_code == 200
    assert client.post(batch, json=body, headers=admin).status_code == 200
    assert_problem(client.get("/api/v1/recommendations/users/999999999", headers=admin), 404)
    too_many = {"user_ids": list(range(1, 102))}
    assert_problem(client.post(batch, json=too_many, headers=admin), 422)
    # popular and trending stay public
    assert client.get("/api/v1/recommendations/popular").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["everything"]},
        {"name": "x", "scopes": []},
        {"name": "nul\u0000byte", "scopes": ["recommendations:read"]},
        {"name": "   ", "scopes": ["recommendations:read"]},
    ],
)
def test_bad_key_requests_are_refused(
    client: TestClient, tokens: dict[str, str], body: dict[str, Any]
) -> None:
    assert_problem(client.post(KEYS, json=body, headers=bearer(tokens["admin"])), 422)
