"""Admin model routes: list, show, activate, roll back; audited; problem+json errors.

Runs on SQLite and PostgreSQL. The `loaded` app has popularity as version 1 (active); each
test trains what else it needs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.fixtures.accounts import signed_in
from tests.fixtures.registry import RegistryView

from bookrec.accounts import audit
from bookrec.accounts.audit import AuditEvent
from bookrec.config import Settings
from bookrec.training.service import train

MODELS = "/api/v1/admin/models"
ADMIN_EMAIL = "models-admin@example.org"
READER_EMAIL = "models-reader@example.org"
SIZED_ALS: dict[str, Any] = {"factors": 32, "regularization": 10.0}


@pytest.fixture
def headers(client: TestClient, engine: Engine, loaded: Settings) -> dict[str, dict[str, str]]:
    return {
        "admin": signed_in(client, engine, loaded, ADMIN_EMAIL, role="admin"),
        "reader": signed_in(client, engine, loaded, READER_EMAIL),
    }


@pytest.fixture
def registry(engine: Engine, loaded: Settings) -> RegistryView:
    return RegistryView(engine, loaded.models_dir)


def assert_problem(response: Any, status: int, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    if detail is not None:
        assert detail in response.json()["detail"]


def audit_actions(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditEvent.action, AuditEvent.target)
            .where(AuditEvent.action.like("model.%"))
            .order_by(AuditEvent.event_id)
        )
        return [(row[0], row[1]) for row in rows]


def served_version(client: TestClient, admin: dict[str, str], wanted: int) -> int | None:
    """The version the app serves, waiting up to 5 s for it to become `wanted`."""
    deadline = time.monotonic() + 5
    served = None
    while time.monotonic() < deadline:
        served = client.get("/api/v1/admin/stats", headers=admin).json()["model_version"]
        if served == wanted:
            break
        time.sleep(0.1)
    return served


def test_list_show_activate_rollback(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    registry: RegistryView,
    engine: Engine,
    loaded: Settings,
) -> None:
    admin = headers["admin"]
    second = train(engine, registry.registry, "als", SIZED_ALS, settings=loaded)
    assert second.promoted, second.gate

    listed = client.get(MODELS, headers=admin)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2 and page["page"] == 1
    assert [(v["version"], v["algo"], v["status"]) for v in page["items"]] == [
        (2, "als", "active"),
        (1, "popularity", "retired"),
    ]
    first_page = client.get(MODELS, params={"size": 1}, headers=admin).json()
    assert [v["version"] for v in first_page["items"]] == [2] and first_page["total"] == 2
    assert [
        v["version"]
        for v in client.get(MODELS, params={"size": 1, "page": 2}, headers=admin).json()["items"]
    ] == [1]

    shown = client.get(f"{MODELS}/2", headers=admin).json()
    for field in ("metrics", "artifact_uri", "params", "data", "gate", "checksums", "created_at"):
        assert shown[field], field
    assert shown["gate"]["compared_with"] == 1 and shown["params"]["factors"] == 32

    rolled = client.post(f"{MODELS}/rollback", headers=admin)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1 and rolled.json()["status"] == "active"
    assert registry.active_number() == 1
    assert served_version(client, admin, 1) == 1

    activated = client.post(f"{MODELS}/2/activate", headers=admin)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active" and activated.json()["activated_at"]
    assert registry.active_number() == 2
    assert served_version(client, admin, 2) == 2
    assert audit_actions(engine) == [
        ("model.rollback", "model_version:1"),
        ("model.activate", "model_version:2"),
    ]


def test_errors_are_problems(
    client: TestClient, headers: dict[str, dict[str, str]], registry: RegistryView, engine: Engine
) -> None:
    admin = headers["admin"]
    assert_problem(client.get(f"{MODELS}/99", headers=admin), 404, "does not exist")
    assert_problem(client.post(f"{MODELS}/99/activate", headers=admin), 404)
    assert_problem(client.get(f"{MODELS}/0", headers=admin), 422)
    assert_problem(client.get(f"{MODELS}/abc", headers=admin), 422)
    assert_problem(client.get(MODELS, params={"size": 1000}, headers=admin), 422)
    assert_problem(client.post(f"{MODELS}/rollback", headers=admin), 409, "nothing to roll back")
    assert client.post(f"{MODELS}/1/activate", headers=admin).status_code == 200  # no-op
    # a tampered version is refused, not activated
    (registry.root / "1" / "popular" / "manifest.json").write_text("{}")
    assert_problem(client.post(f"{MODELS}/1/activate", headers=admin), 409, "fail verification")
    assert registry.get(1).status == "refused"
    assert audit_actions(engine) == [("model.activate", "model_version:1")]


def test_strangers_and_readers_are_refused(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    for method, path in (
        ("GET", MODELS),
        ("GET", f"{MODELS}/1"),
        ("POST", f"{MODELS}/1/activate"),
        ("POST", f"{MODELS}/rollback"),
    ):
        assert_problem(client.request(method, path), 401)
        assert_problem(client.request(method, path, headers=headers["reader"]), 403)


def test_an_activation_whose_audit_row_fails_changes_nothing(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    registry: RegistryView,
    engine: Engine,
    loaded: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The activation and its audit row are one unit of work: both, or neither."""
    admin = headers["admin"]
    train(engine, registry.registry, "als", SIZED_ALS, activate=False, settings=loaded)
    assert registry.active_number() == 1
    real_record = audit.record

    def failing_record(session: Any, action: str, **details: Any) -> Any:
        if action.startswith("model."):
            raise RuntimeError("the audit log is unavailable")
        return real_record(session, action, **details)

    monkeypatch.setattr(audit, "record", failing_record)
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        answer = failing.post(f"{MODELS}/2/activate", headers=admin)
        assert answer.status_code == 500
    assert registry.active_number() == 1
    assert [v.status for v in registry.versions()] == ["active", "candidate"]
    assert audit_actions(engine) == []
    models = client.app.state.bookrec.serving.models  # type: ignore[attr-defined]
    assert models.refresh().number == 1  # what the worker's next poll finds

    monkeypatch.undo()
    assert client.post(f"{MODELS}/2/activate", headers=admin).status_code == 200
    assert registry.active_number() == 2
    assert audit_actions(engine) == [("model.activate", "model_version:2")]
