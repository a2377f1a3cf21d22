"""Scheduled retraining: a cron expression (UTC), skipped when no new data arrived.

"New data" compares the database now with the data snapshot the active version recorded
when it was trained: the number of ratings, the newest rating time and the imported data
sets. Celery beat fires it in production; the embedded worker ticks it otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from croniter import croniter
from sqlalchemy import Connection, Engine, func, select

from bookrec.config import Settings
from bookrec.datasets.models import Dataset
from bookrec.db.session import unit_of_work
from bookrec.jobs import repository, service
from bookrec.jobs.schemas import TrainRequest
from bookrec.model_registry.models import ModelVersionRow
from bookrec.readers.models import Rating

log = structlog.get_logger(__name__)


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron expression names."""
    fire: datetime = croniter(expression, after).get_next(datetime)
    return fire


def data_now(connection: Connection) -> dict[str, Any]:
    """The facts a data snapshot records, read from the database as it is now."""
    ratings, newest = connection.execute(
        select(func.count(), func.max(Rating.rated_at)).select_from(Rating)
    ).one()
    dataset_ids = connection.scalars(select(Dataset.dataset_id).order_by(Dataset.dataset_id))
    return {
        "ratings": int(ratings),
        "newest_timestamp": None if newest is None else int(newest),
        "dataset_ids": list(dataset_ids),
    }


def what_is_new(trained_on: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """Why a retrain is worth it (a short reason), or None when nothing changed."""
    if trained_on is None:
        return "no model is active"
    compared = [key for key in ("ratings", "newest_timestamp", "dataset_ids") if key in trained_on]
    if not compared:
        return "the active version recorded no data snapshot"
    for key in compared:
        before = trained_on[key]
        if key == "dataset_ids":
            before = sorted(before or [])
        if before != now[key]:
            return f"{key} changed from {trained_on[key]} to {now[key]}"
    return None


def enqueue_scheduled(engine: Engine, settings: Settings) -> int | None:
    """Queue a scheduled training job if new data arrived; the job id, or None if skipped."""
    with unit_of_work(engine) as session:
        if repository.unfinished_count(session):
            log.info("scheduled retraining skipped: a training job is already queued or running")
            return None
        trained_on = session.scalar(
            select(ModelVersionRow.data).where(ModelVersionRow.status == "active")
        )
        reason = what_is_new(trained_on, data_now(session.connection()))
        if reason is None:
            log.info("scheduled retraining skipped: no new data since the active version")
            return None
        job = service.submit(
            session,
            TrainRequest(algo=settings.train_algo),
            trigger="schedule",
            requested_by="schedule",
        )
        log.info("scheduled retraining queued", job_id=job.job_id, reason=reason)
        return job.job_id


class EmbeddedSchedule:
    """When the embedded worker's next scheduled retrain is due."""

    def __init__(self, expression: str, now: datetime) -> None:
        self.expression = expression
        self.next_at = next_fire(expression, now)

    def due(self, now: datetime) -> bool:
        """True once per fire time reached (missed fire times while busy collapse into one)."""
        if now < self.next_at:
            return False
        self.next_at = next_fire(self.expression, now)
        return True
