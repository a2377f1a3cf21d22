"""`bookrec users create-admin`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bookrec.accounts.models import User
from bookrec.cli.main import app

runner = CliRunner()
PASSWORD = "violet-harbour-tandem-41"


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BOOKREC_VAR_DIR": str(tmp_path / "var"),
        "BOOKREC_ENV": "test",
        "BOOKREC_ARGON2_TIME_COST": "1",
        "BOOKREC_ARGON2_MEMORY_KIB": "64",
        "BOOKREC_ARGON2_PARALLELISM": "1",
    }


def test_create_admin_then_refuse_the_same_email(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    args = ["users", "create-admin", "--email", "Root@Example.org", "--password", PASSWORD]
    first = runner.invoke(app, [*args, "--json"], env=env)
    assert first.exit_code == 0, first.output
    created = json.loads(first.output[first.output.index("{") :])
    assert created["role"] == "admin" and created["email"] == "root@example.org"

    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 1
    assert "already exists" in second.output
    assert "Traceback" not in second.output

    with Session(engine) as session:
        users = session.scalars(select(User)).all()
    assert [(u.email, u.role) for u in users] == [("root@example.org", "admin")]


def test_create_admin_refuses_a_weak_password(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        ["users", "create-admin", "--email", "root@example.org", "--password", "password123"],
        env=_env(database_url, tmp_path),
    )
    assert result.exit_code == 1
    assert "too easy to guess" in result.output
    with Session(engine) as session:
        assert session.scalars(select(User)).all() == []


def test_admin_created_by_the_cli_logs_in_as_admin(database_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from bookrec.api.app import create_app
    from bookrec.config import Settings

    env = _env(database_url, tmp_path)
    settings = Settings(**env)
    args = ["users", "create-admin", "--email", "root@example.org", "--password", PASSWORD]
    assert runner.invoke(app, args, env=env).exit_code == 0
    with TestClient(create_app(settings)) as client:
        tokens = client.post(
            "/api/v1/auth/login", json={"email": "root@example.org", "password": PASSWORD}
        ).json()
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["role"] == "admin"
