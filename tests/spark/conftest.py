"""Spark tests need pyspark (the `spark` extra) and Java 17+; absent, they skip, or fail where
BOOKREC_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bookrec.config import Settings
from bookrec.errors import ServiceUnavailable
from tests.fixtures.database import services_required
from tests.jobs.conftest import admin_headers, client, job_settings, loaded

__all__ = ["admin_headers", "client", "loaded"]  # the jobs tests' fixtures


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The jobs tests' settings with a lease a JVM starting on a busy machine never misses."""
    return job_settings(
        database_url, tmp_path / "var", job_lease_seconds=120.0, job_heartbeat_seconds=2.0
    )


@pytest.fixture
def spark_ready() -> None:
    from bookrec.training.spark import find_java

    problem = None
    if importlib.util.find_spec("pyspark") is None:
        problem = "pyspark is not installed (the spark extra)"
    else:
        try:
            find_java()
        except ServiceUnavailable as exc:
            problem = exc.detail
    if problem is not None:
        if services_required():
            pytest.fail(problem + " and BOOKREC_REQUIRE_SERVICES=1 requires it")
        pytest.skip(problem)
