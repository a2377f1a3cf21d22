"""`bookrec worker --embedded` as a real process: it runs queued jobs in child processes,
and stopping it (SIGTERM, as `serve` does on exit) interrupts a running job cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bookrec.config import Settings
from bookrec.db.session import unit_of_work
from bookrec.jobs import service
from bookrec.jobs.models import TrainingJob
from bookrec.jobs.schemas import TrainRequest
from tests.fixtures.registry import RegistryView
from tests.jobs.processes import start, stop, wait_for


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # embedded mode's database
def test_the_embedded_worker_runs_jobs_and_sigterm_interrupts_the_running_one(
    loaded: Settings, engine: Engine, tmp_path: Path
) -> None:
    registry = RegistryView(engine, loaded.models_dir)
    versions = registry.numbers()
    with unit_of_work(engine) as session:
        job_id = service.submit(
            session,
            TrainRequest(algo="als", params={"iterations": 100000}),
            trigger="api",
            requested_by="test",
        ).job_id

    def status() -> TrainingJob | None:
        with Session(engine) as session:
            job = session.get(TrainingJob, job_id)
            return job if job is not None and job.stage == "fitting" else None

    log = tmp_path / "worker.log"
    worker = start(loaded, "worker", "--embedded", log=log)
    try:
        running = wait_for("the job to be fitting", status, 60, log)
        assert running.status == "running"
        assert running.worker is not None and not running.worker.endswith(f":{worker.pid}")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        stop(worker)

    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        assert (job.status, job.error) == ("failed", "interrupted (exit 143)")
    assert registry.numbers() == versions
