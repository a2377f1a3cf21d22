"""A job's worker meets the database away (issue 22): its outcome is recorded once the
database answers again, never lost with the failed write and never left `running`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

from bookrec.config import Settings
from bookrec.db.session import unit_of_work
from bookrec.errors import DatabaseUnavailable
from bookrec.jobs import repository, service
from bookrec.jobs.embedded import EmbeddedWorker
from bookrec.jobs.schemas import TrainRequest


class DeadChild:
    """A job's child process the OOM killer took (what `_collect` reads of it)."""

    exitcode = -9
    pid = 4242

    def is_alive(self) -> bool:
        return False

    def join(self, _timeout: float | None = None) -> None:
        return None


def test_a_dead_jobs_failure_waits_for_the_database(engine: Engine, settings: Settings) -> None:
    with unit_of_work(engine) as session:
        job_id = service.submit(
            session,
            TrainRequest(algo="popularity"),
            trigger="cli",
            requested_by=None,
            claimed_by="elsewhere:1",
        ).job_id
    worker = EmbeddedWorker(settings)
    worker._child, worker._child_job = DeadChild(), job_id  # type: ignore[assignment]

    away = True

    def refuse(*_: Any) -> None:
        if away:
            raise engine.dialect.loaded_dbapi.OperationalError("connection refused")

    event.listen(engine, "do_connect", refuse)
    engine.pool.dispose()
    with pytest.raises(DatabaseUnavailable):
        worker._collect(engine)
    assert worker._child is not None, "the dead child was forgotten before its job was failed"

    away = False
    worker._collect(engine)
    assert worker._child is None
    with unit_of_work(engine) as session:
        job = repository.get(session, job_id)
        assert job.status == "failed"
        assert job.error == "training process killed by SIGKILL (out of memory?)"
