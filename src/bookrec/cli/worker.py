"""`bookrec worker` and `bookrec scheduler`: where training jobs run and retraining is fired.

Without REDIS_URL (embedded mode) the worker polls the database and also fires the schedule;
with REDIS_URL it is a Celery worker, and `bookrec scheduler` is Celery beat.
"""

from __future__ import annotations

import os
import socket

import typer

from bookrec.cli.common import engine, fail, settings


def worker(
    embedded: bool = typer.Option(
        False, "--embedded", help="Poll the database for jobs even if REDIS_URL is set"
    ),
    concurrency: int = typer.Option(
        1, min=1, max=64, help="Training jobs at once (Celery mode; embedded runs one)"
    ),
    parent_pid: int = typer.Option(
        None, "--parent-pid", hidden=True, help="Stop when this process (the parent) is gone"
    ),
) -> None:
    """Run training jobs: the embedded worker, or a Celery worker when REDIS_URL is set."""
    config = settings()
    if embedded or config.redis_url is None:
        from bookrec.jobs.embedded import run_embedded_worker

        run_embedded_worker(config, parent_pid=parent_pid)
        return
    if config.worker_metrics_port:
        # before prometheus-client loads: the pool's children write where this process reads
        from bookrec.observability.multiprocess import prepare_multiprocess_dir

        prepare_multiprocess_dir(config.metrics_dir)
    from bookrec.jobs.service import reap
    from bookrec.jobs.tasks import QUEUE, make_celery

    if config.worker_metrics_port:
        from bookrec.observability.metrics import serve_metrics

        serve_metrics(config.worker_metrics_port)

    db = engine(config)
    try:
        reap(db, config.job_lease_seconds)
    finally:
        db.dispose()
    make_celery(config).worker_main(
        [
            "worker",
            f"--loglevel={config.log_level}",
            f"--concurrency={concurrency}",
            f"--queues={QUEUE}",
            f"--hostname=bookrec-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def scheduler() -> None:
    """Run Celery beat: the scheduled retrain (BOOKREC_TRAIN_SCHEDULE) and lost-job sweeps."""
    config = settings()
    if config.redis_url is None:
        fail(
            "REDIS_URL is not set: in embedded mode `bookrec worker` (started by "
            "`bookrec serve`) runs the schedule"
        )
    from bookrec.jobs.tasks import make_celery

    try:
        app = make_celery(config)
    except ValueError as exc:
        fail(str(exc))
    app.start(["beat", f"--loglevel={config.log_level}"])
