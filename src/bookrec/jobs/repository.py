"""SQL for training jobs. State changes are single guarded UPDATEs, so racing workers,
reapers and API calls never move a job backwards or run it twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from bookrec.db.base import utcnow
from bookrec.db.paging import page_of_objects
from bookrec.errors import NotFound
from bookrec.jobs.models import TrainingJob


def create(
    session: Session,
    request: dict[str, Any],
    *,
    trigger: str,
    requested_by: str | None,
    claimed_by: str | None = None,
) -> TrainingJob:
    """A new job: queued, or already running when `claimed_by` (a worker) runs it itself."""
    now = utcnow()
    job = TrainingJob(
        kind="train",
        request=request,
        status="queued" if claimed_by is None else "running",
        progress=0.0,
        trigger=trigger,
        requested_by=None if requested_by is None else requested_by[:255],
        worker=None if claimed_by is None else claimed_by[:255],
        created_at=now,
        started_at=None if claimed_by is None else now,
        heartbeat_at=None if claimed_by is None else now,
    )
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise NotFound("training job", job_id)
    return job


def page(
    session: Session, offset: int, limit: int, status: str | None = None
) -> tuple[list[TrainingJob], int]:
    """Jobs, newest first, and how many match."""
    query = select(TrainingJob).order_by(TrainingJob.job_id.desc())
    if status is not None:
        query = query.where(TrainingJob.status == status)
    return page_of_objects(session, query, offset, limit)


def oldest_queued(session: Session) -> int | None:
    return session.scalar(
        select(TrainingJob.job_id)
        .where(TrainingJob.status == "queued")
        .order_by(TrainingJob.job_id)
        .limit(1)
    )


def unfinished_count(session: Session) -> int:
    """Jobs queued or running."""
    return (
        session.scalar(
            select(func.count())
            .select_from(TrainingJob)
            .where(TrainingJob.status.in_(("queued", "running")))
        )
        or 0
    )


def _changed(session: Session, statement: Any) -> bool:
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def claim(session: Session, job_id: int, worker: str) -> bool:
    """Move a queued job to running for `worker`; False if anyone else got there first."""
    now = utcnow()
    return _changed(
        session,
        update(TrainingJob)
        .where(TrainingJob.job_id == job_id, TrainingJob.status == "queued")
        .values(status="running", worker=worker[:255], started_at=now, heartbeat_at=now),
    )


def set_worker(session: Session, job_id: int, worker: str) -> bool:
    """Name the process that actually runs a claimed job (the embedded worker's child)."""
    return _changed(
        session,
        update(TrainingJob)
        .where(TrainingJob.job_id == job_id, TrainingJob.status == "running")
        .values(worker=worker[:255], heartbeat_at=utcnow()),
    )


def beat(session: Session, job_id: int, stage: str | None, progress: float | None) -> bool:
    """Refresh a running job's heartbeat, with its stage and percent when they changed."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if stage is not None:
        values["stage"] = stage[:10_000]
    if progress is not None:
        values["progress"] = min(100.0, max(0.0, float(progress)))
    return _changed(
        session,
        update(TrainingJob)
        .where(TrainingJob.job_id == job_id, TrainingJob.status == "running")
        .values(**values),
    )


def succeed(session: Session, job_id: int, result: dict[str, Any]) -> bool:
    now = utcnow()
    return _changed(
        session,
        update(TrainingJob)
        .where(TrainingJob.job_id == job_id, TrainingJob.status == "running")
        .values(
            status="succeeded",
            result=result,
            progress=100.0,
            stage="done",
            finished_at=now,
            heartbeat_at=now,
        ),
    )


def fail(
    session: Session,
    job_id: int,
    error: str,
    *,
    statuses: Iterable[str] = ("queued", "running"),
    heartbeat_before: datetime | None = None,
) -> bool:
    """Mark a job failed with `error`, only if it is still in one of `statuses`."""
    statement = update(TrainingJob).where(
        TrainingJob.job_id == job_id, TrainingJob.status.in_(tuple(statuses))
    )
    if heartbeat_before is not None:
        statement = statement.where(TrainingJob.heartbeat_at < heartbeat_before)
    return _changed(
        session, statement.values(status="failed", error=error[:20_000], finished_at=utcnow())
    )


def silent_since(session: Session, cutoff: datetime) -> list[tuple[int, datetime]]:
    """Running jobs whose last heartbeat is older than `cutoff` (claiming sets the first)."""
    rows = session.execute(
        select(TrainingJob.job_id, TrainingJob.heartbeat_at).where(
            TrainingJob.status == "running", TrainingJob.heartbeat_at < cutoff
        )
    ).all()
    return [(row.job_id, row.heartbeat_at) for row in rows if row.heartbeat_at is not None]
