"""Training the ALS on Apache Spark (local mode): through the admin API and the job system on
SQLite (Parquet export) and PostgreSQL (partitioned JDBC read), served like any version; and
through the CLI on movielens-small, scored by the independent refeval against local ALS.

`make test-spark` runs these (marker `spark`); plain `make test` leaves them out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from benchmarks import quality_bench
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.jobs.embedded import EmbeddedWorker
from bookrec.jobs.models import TrainingJob
from bookrec.model_registry.models import ModelVersionRow
from tests.fixtures.movielens import require_refeval
from tests.fixtures.registry import RegistryView

pytestmark = [pytest.mark.spark, pytest.mark.usefixtures("spark_ready")]

TRAIN = "/api/v1/admin/train"
JOBS = "/api/v1/admin/jobs"


@pytest.mark.timeout(600)
def test_a_spark_job_posted_to_the_api_trains_a_version_the_server_serves(
    loaded: Settings,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    database_url: str,
) -> None:
    registry = RegistryView(engine, loaded.models_dir)
    request = {
        "algo": "als",
        "engine": "spark",
        "spark_master": "local[2]",
        "params": {"factors": 16, "iterations": 5, "weighting": "bm25"},
        "force": True,
    }
    response = client.post(TRAIN, json=request, headers=admin_headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    worker = EmbeddedWorker(loaded)
    worker.tick(engine, utcnow())
    assert worker._child is not None
    stages = set()
    while worker._child.is_alive():
        worker._child.join(0.5)
        job = client.get(f"{JOBS}/{job_id}", headers=admin_headers).json()
        stages.add(job["stage"])
    worker.tick(engine, utcnow())

    done = client.get(f"{JOBS}/{job_id}", headers=admin_headers).json()
    assert done["status"] == "succeeded", done["error"]
    assert any(stage and "on Spark: stage" in stage for stage in stages), stages
    number = done["result"]["version"]
    assert registry.active_number() == number
    version = client.get(f"/api/v1/admin/models/{number}", headers=admin_headers).json()
    assert version["algo"] == "als"
    recorded = version["engine"]
    assert recorded["name"] == "spark" and recorded["master"] == "local[2]"
    assert recorded["spark_version"].startswith("4.")
    postgres = database_url.startswith("postgresql")
    assert recorded["source"] == ("jdbc" if postgres else "parquet")
    assert version["metrics"]["ndcg@10"] > 0

    # the artifacts are an ordinary ALS version's: the server loads, explains and serves them,
    # switching at its next poll of the active version (every BOOKREC_MODEL_POLL_SECONDS)
    deadline = time.monotonic() + loaded.model_poll_seconds + 10
    while True:
        listing = client.get(
            "/api/v1/recommendations/users/1",
            params={"k": 5, "explain": True},
            headers=admin_headers,
        )
        assert listing.status_code == 200, listing.text
        body = listing.json()
        if body["model_version"] == number or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["model_version"] == number and len(body["items"]) == 5
    assert any(item["reasons"] for item in body["items"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_spark_als_on_movielens_through_the_cli_matches_local_als(
    movielens: Path, tmp_path: Path
) -> None:
    """Done-when of issue 23: NDCG@10 of `recommend --batch`, scored by refeval, of the Spark
    version is at least 0.95 x the local ALS version's on the same split."""
    results = tmp_path / "quality.json"
    code = quality_bench.main(
        [
            str(movielens),
            "--algos",
            "als,als@spark",
            "--no-baselines",
            "--refeval",
            str(require_refeval()),
            "--out",
            str(results),
        ]
    )
    assert code == 0
    measured = json.loads(results.read_text())["results"]
    local, spark = measured["als"], measured["als@spark"]
    assert local["engine"] == {"name": "local"}
    assert spark["engine"]["name"] == "spark" and spark["engine"]["master"] == "local[*]"
    assert spark["users"] == local["users"] > 500
    assert spark["ndcg@10"] >= 0.95 * local["ndcg@10"], measured


@pytest.mark.timeout(600)
def test_interrupting_a_spark_training_cancels_it_and_registers_nothing(
    imported: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BOOKREC_VAR_DIR": str(tmp_path / "var"),
        "BOOKREC_LOG_FORMAT": "console",
    }
    bookrec = Path(sys.executable).parent / "bookrec"
    argv = [str(bookrec), "train", "--algo", "als", "--engine", "spark", "--iterations", "1000"]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 400
        stage = None
        while time.monotonic() < deadline and process.poll() is None:
            with Session(imported) as session:
                job = session.scalars(select(TrainingJob)).first()
                stage = None if job is None else job.stage
            if stage and "on Spark: stage" in stage:
                break
            time.sleep(0.5)
        assert stage and "on Spark: stage" in stage, stage
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert time.monotonic() - started < 90, "the Spark job was not cancelled"
    with Session(imported) as session:
        job = session.scalars(select(TrainingJob)).one()
        assert job.status == "failed", stderr[-2000:]
        assert session.scalars(select(ModelVersionRow)).first() is None

    def leftovers() -> list[psutil.Process]:  # the JVM of that training, if it outlived it
        return [
            child
            for child in psutil.process_iter(["cmdline"])
            if any(str(tmp_path) in part for part in child.info["cmdline"] or [])
        ]

    for _ in range(40):
        if not leftovers():
            break
        time.sleep(0.5)
    assert not leftovers()
    assert not list((tmp_path / "var" / "spark").glob("train-*"))
