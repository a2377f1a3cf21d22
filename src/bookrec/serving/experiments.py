"""What a worker knows of the running experiment, and the impressions it logs.

`ExperimentStore.refresh` (on the refresher thread, with the model) reads the running
experiment and loads every model version its variants name, memory-mapped beside the active
one, so a request only reads memory to know a reader's variant. `ExposureLog` queues the books
each experiment list showed and writes them in batches from its own thread: bounded (a full
queue drops the newest lists and counts them), never on the request path.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.experiments import service as experiments
from bookrec.experiments.assignment import assign, cumulative
from bookrec.model_registry.registry import ModelRegistry
from bookrec.recsys.artifacts import ArtifactError
from bookrec.serving.loaded import LoadedModel, load_version

log = structlog.get_logger(__name__)

_BOOK_ID = re.compile(rb'"book_id":(\d+)')


@dataclass(frozen=True)
class Arm:
    """A variant as a worker serves it."""

    name: str
    strategy: str
    model_version: int | None


@dataclass(frozen=True)
class Running:
    """The running experiment of the personal lists, as of the last refresh."""

    experiment_id: int
    arms: tuple[Arm, ...]
    shares: tuple[float, ...]

    def arm_for(self, reader_id: int) -> Arm:
        return self.arms[assign(self.experiment_id, reader_id, self.shares)]


class ExperimentStore:
    """The running experiment, the models its variants name, and the shipped default."""

    def __init__(self, registry: ModelRegistry, sessions: SessionFactory) -> None:
        self.registry = registry
        self.sessions = sessions
        self._running: Running | None = None
        self._models: dict[int, LoadedModel] = {}
        self.default_strategy = "personal"
        self.last_error: str | None = None

    def current(self) -> Running | None:
        """An attribute read, never I/O."""
        return self._running

    def model(self, number: int) -> LoadedModel | None:
        return self._models.get(number)

    def refresh(self, active: LoadedModel | None = None) -> None:
        """Re-read the running experiment; load (or drop) the versions its variants name.
        A variant whose version does not load leaves the experiment off in this worker (its
        readers get the default lists, logged), never a list labelled with the wrong arm."""
        with unit_of_work(self.sessions) as session:
            found = experiments.running(session)
            self.default_strategy = experiments.shipped_strategy(session) or "personal"
            if found is None:
                self._running, self._models = None, {}
                return
            arms = tuple(
                Arm(v.name, v.strategy or "personal", v.model_version) for v in found.variants
            )
            running = Running(
                found.experiment_id, arms, cumulative([v.weight for v in found.variants])
            )
            wanted = {a.model_version for a in arms if a.model_version is not None}
            versions = {n: self.registry.get(session, n) for n in wanted if n not in self._models}
        models = {n: m for n, m in self._models.items() if n in wanted}
        for number, version in versions.items():
            if active is not None and active.number == number:
                models[number] = active
                continue
            try:
                models[number] = load_version(version)
            except (ArtifactError, OSError) as exc:
                message = f"experiment {running.experiment_id}: version {number}: {exc}"
                if message != self.last_error:
                    log.error("experiment_variant_unloadable", error=message)
                self.last_error = message
                self._running, self._models = None, {}
                return
        self.last_error = None
        if self._running is None or self._running.experiment_id != running.experiment_id:
            log.info("experiment_running", experiment=running.experiment_id)
        self._models, self._running = models, running


class ExposureLog:
    """Books shown in experiment lists, written in batches off the request path.

    A request only queues its list body (one non-blocking put); the writer thread finds the
    book ids in it, skips (experiment, reader, book) pairs this worker wrote already (a
    reader fetching the same list again shows nothing new), and inserts the rest.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        capacity: int = 10_000,
        flush_seconds: float = 1.0,
        remembered: int = 500_000,
    ) -> None:
        self.sessions = sessions
        self.flush_seconds = flush_seconds
        self.remembered = remembered
        self._queue: queue.Queue[tuple[int, int, str, bytes, int]] = queue.Queue(capacity)
        self._written: set[tuple[int, int, int]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def log(self, experiment_id: int, reader_id: int, variant: str, body: bytes) -> None:
        """Queue a list's impressions (non-blocking; a full queue drops them, counted)."""
        try:
            self._queue.put_nowait((experiment_id, reader_id, variant, body, int(time.time())))
        except queue.Full:
            self.dropped += 1

    def flush(self) -> int:
        """Write what is queued now; returns how many new pairs were written."""
        with self._lock:  # the writer thread and a stopping worker never write the same rows
            rows: list[dict[str, Any]] = []
            pairs: set[tuple[int, int, int]] = set()
            while True:
                try:
                    experiment_id, reader_id, variant, body, shown_at = self._queue.get_nowait()
                except queue.Empty:
                    break
                for match in _BOOK_ID.finditer(body):
                    pair = (experiment_id, reader_id, int(match.group(1)))
                    if pair in self._written or pair in pairs:
                        continue
                    pairs.add(pair)
                    rows.append(
                        {
                            "experiment_id": experiment_id,
                            "reader_id": reader_id,
                            "book_id": pair[2],
                            "variant": variant,
                            "shown_at": shown_at,
                        }
                    )
            if not rows:
                return 0
            try:
                with unit_of_work(self.sessions) as session:
                    experiments.record_exposures(session.connection(), rows)
            except Exception as exc:  # the database is away: these impressions are lost
                self.dropped += len(rows)
                log.warning(
                    "exposures_not_written", rows=len(rows), error=f"{type(exc).__name__}: {exc}"
                )
                return 0
            if len(self._written) + len(pairs) > self.remembered:
                self._written.clear()
            self._written |= pairs
            return len(rows)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bookrec-exposures", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
