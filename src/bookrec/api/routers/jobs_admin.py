"""Training jobs over HTTP: request a training run, follow its progress, read the outcome.

`POST /admin/train` records the job; in production mode it is sent to the Celery workers,
in embedded mode the embedded worker picks it up within a second. Every route needs an
admin (the router carries `access.ADMIN_ONLY`).
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Path, Query, status

from bookrec.api import access
from bookrec.api.deps import OriginDep, PageDep, SessionDep, StateDep
from bookrec.api.schemas import PROBLEM, Page
from bookrec.jobs import repository
from bookrec.jobs import service as jobs
from bookrec.jobs.schemas import JobOut, JobStatus, TrainRequest

log = structlog.get_logger(__name__)

router = access.admin_router()

JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The training job's id")]


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a training run; follow it with GET /admin/jobs/{job_id}",
    responses={
        422: {**PROBLEM, "description": "Unknown algorithm or bad parameters"},
        503: {**PROBLEM, "description": "The job queue (Redis) cannot be reached"},
    },
)
def request_training(
    state: StateDep, admin: access.Admin, origin: OriginDep, body: TrainRequest
) -> JobOut:
    return jobs.request_training(
        state.sessions,
        state.engine,
        state.settings,
        body,
        actor_user_id=admin.user_id,
        origin=origin,
    )


@router.get("/jobs", summary="Training jobs, newest first")
def list_jobs(
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    job_status: Annotated[
        JobStatus | None, Query(alias="status", description="Only jobs in this state")
    ] = None,
) -> Page[JobOut]:
    jobs.reap(state.engine, state.settings.job_lease_seconds)
    rows, total = repository.page(session, page.offset, page.size, job_status)
    return page.of([JobOut.model_validate(row) for row in rows], total)


@router.get(
    "/jobs/{job_id}",
    summary="One training job: state, stage, percent, outcome",
    responses={404: PROBLEM},
)
def get_job(session: SessionDep, state: StateDep, job_id: JobId) -> JobOut:
    jobs.reap(state.engine, state.settings.job_lease_seconds)
    return JobOut.model_validate(repository.get(session, job_id))
