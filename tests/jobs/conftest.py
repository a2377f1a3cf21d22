"""Fixtures for training jobs: settings with a short lease, a loaded database, admin tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train
from tests.api.conftest import make_settings
from tests.fixtures.accounts import signed_in

ADMIN_EMAIL = "jobs-admin@example.org"
#: Short enough that a lost worker is noticed within the test, long enough for real beats.
LEASE_SECONDS = 3.0
HEARTBEAT_SECONDS = 0.5


def job_settings(database_url: str, var_dir: Path, **overrides: object) -> Settings:
    base = make_settings(database_url, var_dir).model_dump(by_alias=False)
    base.update(job_lease_seconds=LEASE_SECONDS, job_heartbeat_seconds=HEARTBEAT_SECONDS)
    base.update(overrides)
    return Settings.model_validate(base)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "var")


@pytest.fixture
def loaded(imported: Engine, settings: Settings) -> Settings:
    """The small data set and an active popularity model."""
    train(imported, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """The app on the test database (tests that train ask for `loaded` too)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin_headers(client: TestClient, engine: Engine, settings: Settings) -> dict[str, str]:
    return signed_in(client, engine, settings, ADMIN_EMAIL, role="admin")
