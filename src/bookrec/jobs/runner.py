"""Run one claimed training job: the same code in the embedded worker, Celery and the CLI.

While training runs, a reporter thread refreshes the job's heartbeat and writes its stage and
percent (at most about once a second, never from the training thread, so a slow database
never slows a fit). Any exception marks the job failed with its error text; the registry's
staging directory and rename mean a failure never leaves a registered half-model. A job
declared lost while it still runs (its heartbeat went stale) is fenced off: the reporter
interrupts the training, so a job marked failed never registers a model afterwards.
The job's outcome is written even across a short database outage: the write is retried
until the database answers or the job's lease runs out (then the reaper fails it).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy import Engine

from bookrec.config import Settings
from bookrec.db.session import make_session_factory, unit_of_work
from bookrec.errors import Conflict, DatabaseUnavailable
from bookrec.jobs import repository, service
from bookrec.jobs.schemas import TrainRequest
from bookrec.observability.metrics import TRAINING_DURATION, TRAINING_JOBS

if TYPE_CHECKING:
    from bookrec.model_registry.registry import ModelRegistry
    from bookrec.training.service import TrainResult

log = structlog.get_logger(__name__)

#: At most one progress write per this many seconds.
PROGRESS_WRITE_SECONDS = 1.0

Progress = Callable[[str, float], None]
T = TypeVar("T")


def record_outcome(write: Callable[[], T], patience_seconds: float) -> T:
    """Run `write` (a job's final state), retrying while the database is away.

    Gives up after `patience_seconds` (the job's lease: past it, the reaper fails the job).
    """
    deadline = time.monotonic() + patience_seconds
    pause = 0.5
    while True:
        try:
            return write()
        except DatabaseUnavailable as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("job outcome not written yet: database away", error=exc.detail)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class JobFenced(BaseException):
    """Raised in a training thread whose job was declared lost: stop, register nothing.

    A BaseException, so that no `except Exception` in the training code swallows it.
    """


def _raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise `exception` in another thread of this process at its next Python instruction."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )
    if done != 1:
        log.error("could not stop the training thread", thread=thread_id, found=done)


class JobReporter:
    """A thread that keeps a running job's heartbeat fresh and persists its progress.

    If the job stops being `running` under it (a reaper declared it lost), the reporter sets
    `lost` and raises `JobFenced` in the thread that created it, where the training runs (at
    its next Python instruction; whatever signal handlers the process has).
    """

    def __init__(self, engine: Engine, job_id: int, heartbeat_seconds: float) -> None:
        self._sessions = make_session_factory(engine)
        self._job_id = job_id
        self._heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._pending: tuple[str, float] | None = None
        self._stopped = threading.Event()
        self._training_thread = threading.get_ident()
        self.lost = False
        self._thread = threading.Thread(
            target=self._run, name=f"job-{job_id}-heartbeat", daemon=True
        )

    def report(self, stage: str, percent: float) -> None:
        """The training progress callback: remember the newest stage and percent."""
        with self._lock:
            self._pending = (stage, percent)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and write the last progress reported."""
        self._stopped.set()
        self._thread.join()
        self._write(force=False)

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._stopped.wait(PROGRESS_WRITE_SECONDS):
            due = time.monotonic() - last_beat >= self._heartbeat_seconds
            try:
                if self._write(force=due):
                    last_beat = time.monotonic()
            except Exception:  # a hiccup of the database must not kill the heartbeat
                log.warning("could not update training job", job_id=self._job_id, exc_info=True)
            if self.lost:
                log.error("training job was declared lost: stopping it", job_id=self._job_id)
                _raise_in_thread(self._training_thread, JobFenced)
                return

    def _write(self, *, force: bool) -> bool:
        """Write pending progress (or, with `force`, just the heartbeat); True if it wrote."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None and not force:
            return False
        stage, percent = pending if pending is not None else (None, None)
        with unit_of_work(self._sessions) as session:
            self.lost = not repository.beat(session, self._job_id, stage, percent)
        return True


def _registry(settings: Settings) -> ModelRegistry:
    from bookrec.model_registry.notify import redis_notifier
    from bookrec.model_registry.registry import ModelRegistry

    return ModelRegistry(settings.models_dir, redis_notifier(settings))


def execute(
    engine: Engine,
    settings: Settings,
    job_id: int,
    *,
    echo: Progress | None = None,
    registry: ModelRegistry | None = None,
) -> TrainResult:
    """Train what a claimed (running) job asks for and record the outcome on the job.

    Re-raises whatever training raised, after the job is marked failed with its text.
    `echo` also receives the progress (a CLI's bar).
    """
    reporter = JobReporter(engine, job_id, settings.job_heartbeat_seconds)

    def progress(stage: str, percent: float) -> None:
        reporter.report(stage, percent)
        if echo is not None:
            echo(stage, percent)

    started = time.monotonic()
    reporter.start()  # before the imports below, which take seconds on a busy machine
    try:
        from bookrec.evaluation.tuned import TunedParams
        from bookrec.training.service import train

        with unit_of_work(engine) as session:
            request = TrainRequest.model_validate(repository.get(session, job_id).request)
        log.info("training job started", job_id=job_id, **request.model_dump())
        outcome = train(
            engine,
            registry or _registry(settings),
            request.algo,
            request.params,
            force=request.force,
            activate=request.activate,
            progress=progress,
            tuned=TunedParams(settings.var_dir / "tuning"),
            settings=settings,
            engine_name=request.engine,
            spark_master=request.spark_master,
        )
    except BaseException as exc:
        reporter.stop()
        if reporter.lost:
            raise Conflict(
                f"training job {job_id} was declared lost while it ran (its heartbeat went "
                "stale); its model was discarded"
            ) from None
        error = service.describe(exc)
        record_outcome(
            lambda: service.fail(engine, job_id, error, statuses=("running",)),
            settings.job_lease_seconds,
        )
        log.error("training job failed", job_id=job_id, error=error)
        _count_job("failed", time.monotonic() - started)
        raise
    reporter.stop()
    result = {
        "version": outcome.version.number,
        "promoted": outcome.promoted,
        "gate": outcome.gate,
    }

    def succeed() -> None:
        with unit_of_work(engine) as session:
            repository.succeed(session, job_id, result)

    record_outcome(succeed, settings.job_lease_seconds)
    log.info("training job succeeded", job_id=job_id, **result)
    _count_job("succeeded", time.monotonic() - started)
    return outcome


def _count_job(outcome: str, seconds: float) -> None:
    TRAINING_JOBS.labels(outcome).inc()
    TRAINING_DURATION.labels(outcome).observe(seconds)


def claim(engine: Engine, job_id: int, worker: str | None = None) -> bool:
    """Atomically take a queued job for this process; False if it is not queued any more."""
    with unit_of_work(engine) as session:
        return repository.claim(session, job_id, worker or service.worker_name())


def run_inline(
    engine: Engine,
    settings: Settings,
    request: TrainRequest,
    *,
    trigger: str,
    requested_by: str | None,
    echo: Progress | None = None,
    registry: ModelRegistry | None = None,
) -> TrainResult:
    """Record a job and run it in this process (`bookrec train`): a job like any other, so a
    killed CLI is later marked failed by the reaper."""
    with unit_of_work(engine) as session:
        job_id = service.submit(
            session,
            request,
            trigger=trigger,
            requested_by=requested_by,
            claimed_by=service.worker_name(),
        ).job_id
    return execute(engine, settings, job_id, echo=echo, registry=registry)
