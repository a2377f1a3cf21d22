"""Production mode: the Celery app (Redis broker, JSON only) and its job tasks.

`bookrec worker` consumes the training queue; each task runs in a prefork child that is
replaced after every task, so a model's memory goes back to the system. `bookrec scheduler`
(beat) fires the scheduled retrain and a sweep that reaps jobs whose worker died. Beat keeps
its schedule in memory (no shelve file: nothing is ever pickled).
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery
from celery.schedules import crontab

from bookrec.config import Settings
from bookrec.db.engine import make_engine
from bookrec.errors import DatabaseUnavailable
from bookrec.jobs import runner, service
from bookrec.jobs.schedule import enqueue_scheduled

log = structlog.get_logger(__name__)

QUEUE = "bookrec.training"
TRAIN_TASK = "bookrec.jobs.train"
SCHEDULED_TRAIN_TASK = "bookrec.jobs.scheduled_train"
REAP_TASK = "bookrec.jobs.reap"


def cron_schedule(expression: str) -> crontab:
    """Celery's crontab for a 5-field cron expression (minute hour day month weekday)."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except Exception as exc:  # celery's parser raises its own ParseException or ValueError
        raise ValueError(f"BOOKREC_TRAIN_SCHEDULE {expression!r}: {exc}") from exc


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "bookrec-reap-lost-jobs": {
            "task": REAP_TASK,
            "schedule": settings.job_lease_seconds / 2,
            "options": {"expires": settings.job_lease_seconds},
        }
    }
    if settings.train_schedule:
        schedule["bookrec-scheduled-retrain"] = {
            "task": SCHEDULED_TRAIN_TASK,
            "schedule": cron_schedule(settings.train_schedule),
        }
    return schedule


def make_celery(settings: Settings) -> Celery:
    """The Celery app for these settings: broker keys under BOOKREC_REDIS_PREFIX."""
    if settings.redis_url is None:
        raise ValueError("REDIS_URL is not set: Celery runs only in production mode")
    app = Celery("bookrec", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_routes={"bookrec.jobs.*": {"queue": QUEUE}},
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "global_keyprefix": settings.redis_prefix,
            "socket_connect_timeout": 5,
        },
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        beat_scheduler="celery.beat:Scheduler",
    )

    # the database away before the job is claimed: the job stays queued and the task is
    # sent again later (after 2, 4, 8... s, at most 60 s apart, 20 times)
    @app.task(
        name=TRAIN_TASK,
        shared=False,
        autoretry_for=(DatabaseUnavailable,),
        retry_backoff=2,
        retry_backoff_max=60,
        retry_jitter=False,
        max_retries=20,
    )
    def train_job(job_id: int) -> None:
        """Claim the job and run it; a job already claimed or finished is left alone."""
        engine = make_engine(settings.sqlalchemy_url)
        try:
            if not runner.claim(engine, int(job_id)):
                log.info("training job not queued any more: skipped", job_id=job_id)
                return
            try:
                runner.execute(engine, settings, int(job_id))
            except Exception:
                return  # recorded on the job; Celery has nothing to retry
        finally:
            engine.dispose()

    @app.task(name=SCHEDULED_TRAIN_TASK, shared=False)
    def scheduled_train() -> None:
        """Queue and send a scheduled retrain, unless no new data arrived."""
        engine = make_engine(settings.sqlalchemy_url)
        try:
            service.reap(engine, settings.job_lease_seconds)
            job_id = enqueue_scheduled(engine, settings)
        finally:
            engine.dispose()
        if job_id is not None:
            train_job.apply_async(args=(job_id,))

    @app.task(name=REAP_TASK, shared=False)
    def reap_jobs() -> None:
        """Mark failed the running jobs whose worker stopped beating."""
        engine = make_engine(settings.sqlalchemy_url)
        try:
            service.reap(engine, settings.job_lease_seconds)
        finally:
            engine.dispose()

    return app


def dispatch(settings: Settings, job_id: int) -> None:
    """Send a queued job to the Celery workers; raises kombu's OperationalError when Redis
    cannot be reached within about a second (a request must not hang on it)."""
    app = make_celery(settings)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=1)
            app.send_task(
                TRAIN_TASK, args=[job_id], queue=QUEUE, connection=connection, retry=False
            )
    finally:
        app.close()
