"""An app wired to a test database holding the small data set and a trained model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train


def make_settings(database_url: str, var_dir: Path) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        BOOKREC_VAR_DIR=var_dir,
        BOOKREC_ENV="test",
        BOOKREC_LOG_FORMAT="console",
        # cheap hashing keeps the suite fast; the defaults (and production's floor) stay secure
        BOOKREC_ARGON2_TIME_COST=1,
        BOOKREC_ARGON2_MEMORY_KIB=64,
        BOOKREC_ARGON2_PARALLELISM=1,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "var")


@pytest.fixture
def loaded(engine: Engine, settings: Settings, small_dataset: Path) -> Settings:
    """The small data set imported and a popularity model trained and active."""
    import_directory(engine, small_dataset)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


@pytest.fixture
def client(loaded: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(loaded)) as test_client:
        yield test_client


@pytest.fixture
def bare_client(settings: Settings) -> Iterator[TestClient]:
    """The app on an empty, migrated database: no catalogue, no model (enough for accounts)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
