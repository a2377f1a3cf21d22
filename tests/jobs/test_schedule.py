"""Scheduled retraining: skipped when no data arrived since the active version, queued when
some did; the embedded clock and Celery beat's schedule read the same cron expression."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bookrec.config import Settings
from bookrec.jobs.models import TrainingJob
from bookrec.jobs.schedule import EmbeddedSchedule, enqueue_scheduled, what_is_new
from bookrec.jobs.tasks import QUEUE, SCHEDULED_TRAIN_TASK, beat_schedule, make_celery
from bookrec.readers.models import Rating
from tests.fixtures.redis import REDIS_URL
from tests.jobs.conftest import job_settings


def add_rating(engine: Engine, rated_at: int) -> None:
    """A reader rates a book they had not rated."""
    with Session(engine) as session, session.begin():
        reader_id = session.scalars(select(Rating.reader_id).limit(1)).one()
        rated = set(session.scalars(select(Rating.book_id).where(Rating.reader_id == reader_id)))
        book_id = next(b for b in range(1, 1000) if b not in rated)
        session.add(Rating(reader_id=reader_id, book_id=book_id, rating=4, rated_at=rated_at))


def jobs(engine: Engine) -> list[TrainingJob]:
    with Session(engine) as session:
        return list(session.scalars(select(TrainingJob).order_by(TrainingJob.job_id)))


def test_a_scheduled_run_is_skipped_without_new_data_and_queued_with_it(
    engine: Engine, loaded: Settings
) -> None:
    settings = loaded.model_copy(update={"train_algo": "popularity"})

    assert enqueue_scheduled(engine, settings) is None
    assert jobs(engine) == []

    add_rating(engine, rated_at=2_000_000_000)
    job_id = enqueue_scheduled(engine, settings)

    assert job_id is not None
    [job] = jobs(engine)
    assert (job.job_id, job.trigger, job.status) == (job_id, "schedule", "queued")
    assert job.request["algo"] == "popularity"
    assert enqueue_scheduled(engine, settings) is None  # one is already waiting


def test_what_counts_as_new_data() -> None:
    now = {"ratings": 10, "newest_timestamp": 500, "dataset_ids": [1, 2]}
    assert what_is_new({"ratings": 10, "newest_timestamp": 500, "dataset_ids": [2, 1]}, now) is None
    assert what_is_new({"ratings": 9, "newest_timestamp": 500}, now) == (
        "ratings changed from 9 to 10"
    )
    assert what_is_new({"ratings": 10, "newest_timestamp": 400}, now) is not None
    assert what_is_new({"ratings": 10, "dataset_ids": [1]}, now) is not None
    assert what_is_new(None, now) == "no model is active"
    assert what_is_new({}, now) is not None


def test_the_embedded_clock_fires_once_per_cron_time() -> None:
    start = datetime(2026, 11, 26, 2, 59, 30, tzinfo=UTC)
    schedule = EmbeddedSchedule("0 3 * * *", start)

    assert schedule.next_at == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert not schedule.due(start)
    assert schedule.due(datetime(2026, 11, 26, 3, 0, 1, tzinfo=UTC))
    assert not schedule.due(datetime(2026, 11, 26, 3, 0, 2, tzinfo=UTC))
    assert schedule.next_at == datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_beat_fires_the_retrain_on_the_cron_expression(tmp_path: Path) -> None:
    settings = job_settings("sqlite://", tmp_path, train_schedule="30 4 * * 1-5")
    schedule = beat_schedule(settings)

    retrain = schedule["bookrec-scheduled-retrain"]
    assert retrain["task"] == SCHEDULED_TRAIN_TASK
    assert retrain["schedule"].minute == {30} and retrain["schedule"].hour == {4}
    assert retrain["schedule"].day_of_week == {1, 2, 3, 4, 5}
    assert "bookrec-scheduled-retrain" not in beat_schedule(job_settings("sqlite://", tmp_path))


def test_the_scheduled_celery_task_queues_and_sends_a_job_only_for_new_data(
    engine: Engine, loaded: Settings, redis_server: redis.Redis, redis_prefix: str
) -> None:
    settings = loaded.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": redis_prefix})
    app = make_celery(settings)
    try:
        app.tasks[SCHEDULED_TRAIN_TASK].apply()
        assert jobs(engine) == []
        add_rating(engine, rated_at=2_000_000_000)
        app.tasks[SCHEDULED_TRAIN_TASK].apply()
    finally:
        app.close()

    [job] = jobs(engine)
    assert job.trigger == "schedule" and job.status == "queued"
    assert redis_server.llen(f"{redis_prefix}{QUEUE}") == 1
