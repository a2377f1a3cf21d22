"""The embedded worker (no Redis): polls the jobs table, runs each job in a child process.

`bookrec serve` starts it as a process of its own, so neither training nor a crash in it can
take the API down; each job then runs in a fresh spawned child, so a crash (segfault, the
OOM killer's SIGKILL) is contained, seen at once and recorded on the job. The same loop
reaps jobs whose worker died elsewhere (a killed `bookrec train`) and fires the schedule.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from datetime import datetime
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog
from sqlalchemy import Engine

from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.db.engine import make_engine
from bookrec.db.session import unit_of_work
from bookrec.jobs import repository, runner, service
from bookrec.jobs.schedule import EmbeddedSchedule, enqueue_scheduled
from bookrec.observability.logging import configure_logging

log = structlog.get_logger(__name__)

#: How long a job child gets to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 10.0


def run_job_process(settings: Settings, job_id: int) -> None:
    """Entry point of a job's child process: run the claimed job, exit 1 if it failed."""
    configure_logging(settings.log_level, settings.log_format)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with unit_of_work(engine) as session:
            repository.set_worker(session, job_id, service.worker_name())
        runner.execute(engine, settings, job_id)
    except Exception:
        sys.exit(1)  # the job holds the error; the traceback is in the log already
    finally:
        engine.dispose()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"training process killed by {name}{hint}"
    return f"training process exited with code {exitcode}"


class EmbeddedWorker:
    """Poll for queued jobs, run one at a time in a child process, reap, fire the schedule."""

    def __init__(self, settings: Settings, *, parent_pid: int | None = None) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self._parent = parent_pid
        self._context = multiprocessing.get_context("spawn")
        self._child: BaseProcess | None = None
        self._child_job: int | None = None
        self._child_beat = 0.0
        self._schedule = (
            EmbeddedSchedule(settings.train_schedule, utcnow()) if settings.train_schedule else None
        )

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Loop until stopped (SIGTERM/SIGINT or `stop()`); a running job is then interrupted."""
        engine = make_engine(self.settings.sqlalchemy_url)
        log.info(
            "embedded worker started",
            schedule=self.settings.train_schedule or None,
            next_scheduled=None if self._schedule is None else self._schedule.next_at.isoformat(),
        )
        try:
            while not self.stopping.is_set():
                if self._parent is not None and os.getppid() != self._parent:
                    log.info("embedded worker stops: the process that started it is gone")
                    break
                try:
                    self.tick(engine, utcnow())
                except Exception:  # the database may be briefly away: try again next poll
                    log.exception("embedded worker poll failed")
                self.stopping.wait(self.settings.job_poll_seconds)
        finally:
            self._stop_child(engine)
            engine.dispose()
            log.info("embedded worker stopped")

    def tick(self, engine: Engine, now: datetime) -> None:
        """One poll: collect a finished child, reap lost jobs, fire the schedule, start a job."""
        self._collect(engine)
        service.reap(engine, self.settings.job_lease_seconds)
        if self._schedule is not None and self._schedule.due(now):
            enqueue_scheduled(engine, self.settings)
        if self._child is None:
            self._start_next(engine)

    def _start_next(self, engine: Engine) -> None:
        with unit_of_work(engine) as session:
            job_id = repository.oldest_queued(session)
        if job_id is None or not runner.claim(engine, job_id):
            return
        child = self._context.Process(
            target=run_job_process,
            args=(self.settings, job_id),
            name=f"bookrec-job-{job_id}",
            daemon=False,
        )
        try:
            child.start()
        except BaseException as exc:
            service.fail(engine, job_id, f"could not start the training process: {exc}")
            raise
        self._child, self._child_job = child, job_id
        log.info("training job dispatched", job_id=job_id, pid=child.pid)

    def _collect(self, engine: Engine) -> None:
        """Beat for a live child (it needs seconds to start beating itself); record a dead one."""
        child, job_id = self._child, self._child_job
        if child is None or job_id is None:
            return
        if child.is_alive():
            if time.monotonic() - self._child_beat >= self.settings.job_heartbeat_seconds:
                with unit_of_work(engine) as session:
                    repository.beat(session, job_id, None, None)
                self._child_beat = time.monotonic()
            return
        child.join()
        if child.exitcode != 0:
            reason = describe_exit(child.exitcode)
            # the database away: this raises, the child stays here and the next poll retries
            if service.fail(engine, job_id, reason, statuses=("running",)):
                log.error("training job died", job_id=job_id, reason=reason)
        self._child = self._child_job = None

    def _stop_child(self, engine: Engine) -> None:
        child, job_id = self._child, self._child_job
        if child is None or job_id is None:
            return
        if child.is_alive():
            log.info("interrupting the running training job", job_id=job_id)
            child.terminate()
            child.join(STOP_GRACE_SECONDS)
            if child.is_alive():
                child.kill()
                child.join()
        self._child = self._child_job = None
        service.fail(engine, job_id, "interrupted: the worker was stopped", statuses=("running",))


def run_embedded_worker(settings: Settings, *, parent_pid: int | None = None) -> None:
    """Run the embedded worker in this process until SIGTERM or SIGINT (or, given
    `parent_pid`, until that process, which started this one, is gone)."""
    worker = EmbeddedWorker(settings, parent_pid=parent_pid)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()
