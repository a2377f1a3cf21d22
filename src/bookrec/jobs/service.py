"""Rules for training jobs: what a valid request is, submitting one, reaping lost ones."""

from __future__ import annotations

import getpass
import os
import socket
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bookrec.accounts import audit
from bookrec.accounts.audit import Origin
from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.errors import BookrecError, InvalidInput, ServiceUnavailable
from bookrec.jobs import repository
from bookrec.jobs.models import TrainingJob
from bookrec.jobs.schemas import JobOut, TrainRequest

log = structlog.get_logger(__name__)


def worker_name() -> str:
    """`host:pid` of this process, as a job records who runs it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def local_user() -> str:
    """Who runs a command on this machine (`cli:user@host`), as a job records who asked."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container with an anonymous uid)
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


def check_request(request: TrainRequest) -> TrainRequest:
    """Refuse an unknown algorithm or parameters it does not take, before anything is queued."""
    from bookrec.recsys import registry as algorithms

    algo = request.algo or algorithms.DEFAULT_ALGO
    if algo not in algorithms.ALGORITHMS:
        raise InvalidInput(
            f"bad training request: unknown algorithm {algo!r}; "
            f"choose from {', '.join(algorithms.ALGORITHMS)}",
            field="algo",
        )
    try:
        algorithms.build(algo, request.params)
    except (ValueError, TypeError, ValidationError) as exc:
        raise InvalidInput(f"bad training request: {exc}", field="params") from None
    if request.engine == "spark" and algo != "als":
        raise InvalidInput(
            f"bad training request: the spark engine trains only the als algorithm, not {algo!r}",
            field="engine",
        )
    if request.spark_master is not None:
        if request.engine != "spark":
            raise InvalidInput(
                "bad training request: spark_master is only for engine spark",
                field="spark_master",
            )
        from bookrec.training.spark import check_master

        check_master(request.spark_master)
    return request


def submit(
    session: Session,
    request: TrainRequest,
    *,
    trigger: str,
    requested_by: str | None,
    actor_user_id: int | None = None,
    origin: Origin | None = None,
    claimed_by: str | None = None,
) -> TrainingJob:
    """Queue a training job (in the caller's unit of work) and audit who asked for it.

    With `claimed_by` the job starts out running for that worker (the CLI runs it itself).
    """
    check_request(request)
    job = repository.create(
        session,
        request.model_dump(),
        trigger=trigger,
        requested_by=requested_by,
        claimed_by=claimed_by,
    )
    if trigger == "api":
        audit.record(
            session,
            "model.train",
            origin=origin,
            actor_user_id=actor_user_id,
            target=f"training_job:{job.job_id}",
            details=request.model_dump(),
        )
    log.info("training job queued", job_id=job.job_id, trigger=trigger, **request.model_dump())
    return job


def request_training(
    sessions: SessionFactory,
    engine: Engine,
    settings: Settings,
    request: TrainRequest,
    *,
    actor_user_id: int,
    origin: Origin | None = None,
) -> JobOut:
    """An admin's training request (API or web app): commit the job, then hand it to a worker.

    The job is committed before it is sent, so a worker never receives an id it cannot see.
    In production mode it goes to the Celery queue (a queue that cannot be reached fails the
    job and answers 503); in embedded mode the embedded worker picks it up within a second.
    """
    with unit_of_work(sessions) as session:
        job = JobOut.model_validate(
            submit(
                session,
                request,
                trigger="api",
                requested_by=f"user:{actor_user_id}",
                actor_user_id=actor_user_id,
                origin=origin,
            )
        )
    if settings.redis_url is not None:
        from bookrec.jobs.tasks import dispatch

        try:
            dispatch(settings, job.job_id)
        except Exception as exc:
            log.error("could not queue training job", job_id=job.job_id, error=str(exc))
            fail(engine, job.job_id, f"could not reach the job queue: {exc}")
            raise ServiceUnavailable(
                "the job queue cannot be reached right now; try again later"
            ) from None
    return job


def reap(engine: Engine, lease_seconds: float) -> list[int]:
    """Mark failed every running job whose heartbeat is older than the lease; their ids."""
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    reaped: list[int] = []
    with unit_of_work(engine) as session:
        for job_id, beat_at in repository.silent_since(session, cutoff):
            error = f"worker lost (no heartbeat since {beat_at.isoformat(timespec='seconds')})"
            if repository.fail(
                session, job_id, error, statuses=("running",), heartbeat_before=cutoff
            ):
                reaped.append(job_id)
                log.warning("training job lost its worker", job_id=job_id, heartbeat_at=beat_at)
    return reaped


def fail(engine: Engine, job_id: int, error: str, **conditions: Any) -> bool:
    """Mark a job failed in its own transaction (if it is still queued or running)."""
    with unit_of_work(engine) as session:
        return repository.fail(session, job_id, error, **conditions)


def describe(exc: BaseException) -> str:
    """The error text a failed job keeps: the user-facing detail, or the type and message."""
    if isinstance(exc, BookrecError):
        return exc.detail
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, SystemExit):
        return f"interrupted (exit {exc.code})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
