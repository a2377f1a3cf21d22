"""Job lifecycle on SQLite and PostgreSQL: progress persisted, errors kept, atomic claims,
lost workers reaped by their lease."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.db.session import unit_of_work
from bookrec.errors import Conflict, InvalidInput
from bookrec.jobs import repository, runner, service
from bookrec.jobs.models import TrainingJob
from bookrec.jobs.schemas import TrainRequest
from tests.fixtures.registry import RegistryView
from tests.jobs.processes import wait_for


def queue(engine: Engine, **request: Any) -> int:
    with unit_of_work(engine) as session:
        job = service.submit(session, TrainRequest(**request), trigger="cli", requested_by="test")
        return job.job_id


def job(engine: Engine, job_id: int) -> TrainingJob:
    with Session(engine) as session:
        return repository.get(session, job_id)


def test_a_job_runs_from_queued_to_succeeded(imported: Engine, settings: Settings) -> None:
    job_id = queue(imported, algo="popularity")
    assert job(imported, job_id).status == "queued"
    seen: list[tuple[str, float]] = []

    assert runner.claim(imported, job_id)
    outcome = runner.execute(
        imported, settings, job_id, echo=lambda stage, pct: seen.append((stage, pct))
    )

    done = job(imported, job_id)
    assert done.status == "succeeded"
    assert done.progress == 100.0
    assert done.error is None
    assert done.result == {
        "version": outcome.version.number,
        "promoted": True,
        "gate": outcome.gate,
    }
    assert done.worker == service.worker_name()
    assert done.started_at is not None and done.finished_at is not None
    assert done.heartbeat_at is not None
    assert seen[0][1] == 0.0 and seen[-1][1] == 100.0
    assert RegistryView(imported, settings.models_dir).active_number() == outcome.version.number


def test_progress_and_heartbeat_are_written_about_once_a_second(
    imported: Engine, settings: Settings
) -> None:
    job_id = queue(imported, algo="popularity")
    assert runner.claim(imported, job_id)
    claimed_beat = job(imported, job_id).heartbeat_at
    reporter = runner.JobReporter(imported, job_id, heartbeat_seconds=0.5)
    reporter.start()
    try:
        for percent in range(0, 50):
            reporter.report("fitting", float(percent))  # a burst: only the newest is written
        wait_for("the progress written", lambda: job(imported, job_id).progress == 49.0, 5)
        row = job(imported, job_id)
        assert (row.stage, row.progress) == ("fitting", 49.0)
        assert row.heartbeat_at is not None and claimed_beat is not None
        assert row.heartbeat_at > claimed_beat
    finally:
        reporter.stop()


def test_a_failure_marks_the_job_failed_and_keeps_the_error(
    engine: Engine, settings: Settings
) -> None:
    job_id = queue(engine, algo="popularity")  # the database holds no ratings
    assert runner.claim(engine, job_id)

    with pytest.raises(InvalidInput, match="no ratings"):
        runner.execute(engine, settings, job_id)

    failed = job(engine, job_id)
    assert failed.status == "failed"
    assert "there are no ratings to train on" in (failed.error or "")
    assert failed.finished_at is not None
    assert RegistryView(engine, settings.models_dir).versions() == []


def test_only_one_of_many_racing_workers_claims_a_job(engine: Engine) -> None:
    job_id = queue(engine, algo="popularity")
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def contend(index: int) -> None:
        barrier.wait()
        wins.append(runner.claim(engine, job_id, worker=f"test:{index}"))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(wins) == [False] * 7 + [True]
    assert job(engine, job_id).status == "running"
    assert not runner.claim(engine, job_id)


def test_a_job_whose_heartbeat_outlived_the_lease_is_reaped(engine: Engine) -> None:
    silent, alive = queue(engine), queue(engine)
    assert runner.claim(engine, silent) and runner.claim(engine, alive)
    long_ago = utcnow() - timedelta(seconds=120)
    with unit_of_work(engine) as session:
        session.execute(
            update(TrainingJob).where(TrainingJob.job_id == silent).values(heartbeat_at=long_ago)
        )

    assert service.reap(engine, lease_seconds=30) == [silent]

    lost = job(engine, silent)
    assert lost.status == "failed"
    assert (lost.error or "").startswith("worker lost (no heartbeat since ")
    assert job(engine, alive).status == "running"
    assert service.reap(engine, lease_seconds=30) == []


def test_finished_jobs_never_move_backwards(engine: Engine) -> None:
    job_id = queue(engine)
    with unit_of_work(engine) as session:
        assert not repository.succeed(session, job_id, {})  # not running yet
        assert repository.fail(session, job_id, "cancelled")
        assert not repository.claim(session, job_id, "late:1")
        assert not repository.beat(session, job_id, "fitting", 50.0)
    assert job(engine, job_id).status == "failed"


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"algo": "deep-magic"}, "algo"),
        ({"algo": "als", "params": {"factors": -3}}, "params"),
        ({"algo": "als", "params": {"no_such_option": 1}}, "params"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_queued(
    request_body: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.check_request(TrainRequest(**request_body))
    assert refused.value.extra["field"] == field


def test_a_job_declared_lost_while_it_runs_is_stopped_and_registers_nothing(
    loaded: Settings, engine: Engine
) -> None:
    registry = RegistryView(engine, loaded.models_dir)
    versions = registry.numbers()
    job_id = queue(engine, algo="als", params={"iterations": 100000})
    assert runner.claim(engine, job_id)

    def declare_lost() -> None:  # what a reaper does when the heartbeat looks stale
        deadline = time.monotonic() + 60
        while job(engine, job_id).stage != "fitting" and time.monotonic() < deadline:
            time.sleep(0.1)
        service.fail(engine, job_id, "worker lost (no heartbeat since …)")

    reaper = threading.Thread(target=declare_lost)
    reaper.start()
    try:
        with pytest.raises(Conflict, match="declared lost"):
            runner.execute(engine, loaded, job_id)
    finally:
        reaper.join()

    assert job(engine, job_id).status == "failed"
    assert registry.numbers() == versions
