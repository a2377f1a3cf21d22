"""Production mode end to end: a real Celery worker (a `bookrec worker` subprocess on the
local Redis, under a key prefix of its own) runs a job posted through POST /admin/train."""

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
from tests.fixtures.accounts import signed_in
from tests.fixtures.redis import REDIS_URL
from tests.fixtures.registry import RegistryView
from tests.jobs.conftest import ADMIN_EMAIL, job_settings
from tests.jobs.processes import start, stop, wait_for


@pytest.fixture
def production(
    database_url: str, redis_prefix: str, tmp_path: Path, engine: Engine, small_dataset: Path
) -> Settings:
    """Settings of production mode on the test database and Redis, with data and a model."""
    settings = job_settings(
        database_url,
        tmp_path / "var",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
    )
    import_directory(engine, small_dataset)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


@pytest.fixture
def celery_worker(production: Settings, tmp_path: Path) -> Iterator[Path]:
    """`bookrec worker` (Celery) running until the test ends; yields its log file."""
    log = tmp_path / "celery-worker.log"
    worker = start(production, "worker", log=log)
    try:
        wait_for("the Celery worker to be ready", lambda: b" ready." in log.read_bytes(), 60, log)
        yield log
    finally:
        stop(worker)


@pytest.mark.parametrize(  # production mode's database
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_job_posted_to_the_api_runs_on_a_celery_worker(
    production: Settings, celery_worker: Path, engine: Engine
) -> None:
    with TestClient(create_app(production)) as client:
        headers = signed_in(client, engine, production, ADMIN_EMAIL, role="admin")
        posted = client.post(
            "/api/v1/admin/train", json={"algo": "popularity", "force": True}, headers=headers
        )
        assert posted.status_code == 202, posted.text
        url = f"/api/v1/admin/jobs/{posted.json()['job_id']}"

        def finished() -> dict[str, object] | None:
            job: dict[str, object] = client.get(url, headers=headers).json()
            return job if job["status"] in {"succeeded", "failed"} else None

        job = wait_for("the Celery worker to run the job", finished, 60, celery_worker)

    assert job["status"] == "succeeded", job
    assert job["progress"] == 100.0
    assert str(job["worker"]).rsplit(":", 1)[1].isdigit()
    result = job["result"]
    assert isinstance(result, dict) and result["promoted"] is True
    assert RegistryView(engine, production.models_dir).active_number() == result["version"]
