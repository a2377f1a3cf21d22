"""`--engine spark` without starting Spark: the requests it refuses and a machine without Java.

Fast (no JVM is started), so these run with plain `make test`; tests/spark/ trains on Spark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from tests.fixtures.cli import invoke
from tests.fixtures.registry import RegistryView
from tests.jobs.conftest import admin_headers, client, loaded, settings

from bookrec.config import Settings
from bookrec.jobs.models import TrainingJob
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train
from bookrec.training.spark import check_master, jdbc_options

__all__ = ["admin_headers", "client", "loaded", "settings"]  # the jobs tests' fixtures

TRAIN = "/api/v1/admin/train"


def test_without_java_the_spark_training_fails_naming_java_and_keeps_the_active_version(
    imported: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "BOOKREC_VAR_DIR": str(tmp_path / "var"),
        "BOOKREC_LOG_FORMAT": "console",
        "COLUMNS": "200",
    }
    code, output = invoke(env, "train", "--algo", "popularity")
    assert code == 0, output
    registry = RegistryView(imported, tmp_path / "var" / "models")
    active = registry.active_number()

    empty = tmp_path / "no-java"
    empty.mkdir()
    no_java = {**env, "PATH": str(empty), "JAVA_HOME": ""}
    code, output = invoke(no_java, "train", "--algo", "als", "--engine", "spark", "--force")

    assert code == 1, output
    assert "training on Spark needs Java 17 or newer, and none was found" in output
    assert "default-jre-headless" in output
    assert registry.active_number() == active
    with Session(imported) as session:
        job = session.scalars(select(TrainingJob).order_by(TrainingJob.job_id.desc())).first()
    assert job is not None and job.status == "failed"
    assert job.request["engine"] == "spark"
    assert job.error is not None and "needs Java 17" in job.error

    # JAVA_HOME pointing nowhere is named as such
    code, output = invoke(
        {**no_java, "JAVA_HOME": str(empty)}, "train", "--algo", "als", "--engine", "spark"
    )
    assert code == 1 and f"JAVA_HOME={empty} has no bin/java" in output


def test_the_cli_refuses_spark_for_other_algorithms_and_a_master_without_spark(
    imported: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "BOOKREC_VAR_DIR": str(tmp_path / "var")}
    code, output = invoke(env, "train", "--algo", "ease", "--engine", "spark")
    assert code != 0 and "spark engine trains only the als algorithm" in output
    code, output = invoke(env, "train", "--algo", "als", "--spark-master", "local[2]")
    assert code == 2 and "--spark-master needs --engine spark" in output
    code, output = invoke(env, "train", "--algo", "als", "--engine", "hadoop")
    assert code == 2 and "--engine must be local or spark" in output


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"algo": "ease", "engine": "spark"}, "engine"),
        ({"engine": "spark"}, "engine"),  # the default algorithm is the hybrid
        ({"algo": "als", "engine": "spark", "spark_master": "http://evil:80"}, "spark_master"),
        ({"algo": "als", "spark_master": "local[*]"}, "spark_master"),
        ({"algo": "als", "engine": "mapreduce"}, None),
    ],
)
def test_the_api_refuses_bad_spark_requests_before_queueing(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    body: dict[str, object],
    field: str | None,
) -> None:
    response = client.post(TRAIN, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert field in json.dumps(response.json())
    with Session(engine) as session:
        assert session.scalars(select(TrainingJob)).first() is None


def test_local_versions_say_they_were_trained_locally(imported: Engine, settings: Settings) -> None:
    result = train(imported, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    assert result.version.engine == {"name": "local"}
    assert result.version.to_dict()["engine"] == {"name": "local"}


@pytest.mark.parametrize(
    "master", ["local", "local[*]", "local[4]", "local[4,2]", "spark://a:7077,b:7077", "yarn"]
)
def test_master_urls_spark_knows_are_accepted(master: str) -> None:
    assert check_master(master) == master


def test_jdbc_options_come_from_the_database_url() -> None:
    options = jdbc_options("postgresql+psycopg://reader:s3cret@db.internal:6543/books")
    assert options == {
        "url": "jdbc:postgresql://db.internal:6543/books",
        "driver": "org.postgresql.Driver",
        "user": "reader",
        "password": "s3cret",
    }
