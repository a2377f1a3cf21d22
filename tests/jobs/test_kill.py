"""kill -9 of a real `bookrec train` mid-fit: the lease marks its job failed, the active
version stays, no version is registered and no leftover directory counts as one."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bookrec.config import Settings
from bookrec.jobs import service
from bookrec.jobs.models import TrainingJob
from tests.fixtures.registry import RegistryView
from tests.jobs.processes import start, stop, wait_for


def running_job(engine: Engine) -> TrainingJob | None:
    with Session(engine) as session:
        return session.scalars(
            select(TrainingJob).where(
                TrainingJob.trigger == "cli",
                TrainingJob.status == "running",
                TrainingJob.stage == "fitting",
            )
        ).one_or_none()


def version_dirs(models_dir: Path) -> set[str]:
    return {path.name for path in models_dir.iterdir() if re.fullmatch(r"\d+", path.name)}


def test_sigkill_of_bookrec_train_mid_fit_is_reaped_and_changes_nothing(
    loaded: Settings, engine: Engine, tmp_path: Path
) -> None:
    registry = RegistryView(engine, loaded.models_dir)
    active, versions = registry.active_number(), registry.numbers()
    on_disk = version_dirs(loaded.models_dir)
    log = tmp_path / "train.log"

    # ALS with a huge iteration count is still fitting whenever it is killed
    train = start(loaded, "train", "--algo", "als", "--iterations", "100000", log=log)
    try:
        job = wait_for("the job to report fitting", lambda: running_job(engine), 60, log)
        assert job.worker is not None and job.worker.endswith(f":{train.pid}")
        os.kill(train.pid, signal.SIGKILL)
        assert train.wait(10) == -signal.SIGKILL
    finally:
        stop(train)

    with Session(engine) as session:
        assert session.get(TrainingJob, job.job_id).status == "running"  # type: ignore[union-attr]

    def reaped() -> TrainingJob | None:
        service.reap(engine, loaded.job_lease_seconds)
        with Session(engine) as session:
            row = session.get(TrainingJob, job.job_id)
            return row if row is not None and row.status == "failed" else None

    failed = wait_for("the lease to expire", reaped, loaded.job_lease_seconds + 10)
    assert (failed.error or "").startswith("worker lost (no heartbeat since ")
    assert registry.active_number() == active
    assert registry.numbers() == versions
    assert version_dirs(loaded.models_dir) == on_disk
