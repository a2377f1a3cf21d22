"""The model a worker serves: a version loaded completely, and the store that switches it.

A new version is loaded completely (every checksum verified, arrays memory-mapped so workers
share their pages) before it is swapped in, so requests during a switch are answered by the
old model or the new one, never by neither. A version whose artifact is missing or fails
its checksum is refused in the registry (which falls back to the newest good version) and
the worker keeps serving what it has; with no loadable version at all it serves a version's
popularity lists alone.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.model_registry.registry import ModelRegistry
from bookrec.model_registry.version import ModelVersion
from bookrec.observability.metrics import served_model_gauges
from bookrec.recsys import registry as algorithms
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.serving.precomputed import PrecomputedLists

log = structlog.get_logger(__name__)

#: How many refusals in a row one refresh follows before it looks for any loadable version.
MAX_FALLBACKS = 8


@dataclass(frozen=True)
class LoadedModel:
    version: ModelVersion
    model: ScoringRecommender
    popular: PopularityRecommender
    trending: PopularityRecommender
    #: why this worker serves something less than the version's full model (None: it does not)
    degraded: str | None = None
    #: every reader's list as of training (None: the version has none)
    precomputed: PrecomputedLists | None = None

    @property
    def number(self) -> int:
        return self.version.number

    @property
    def algo(self) -> str:
        return "popularity" if self.degraded else self.version.algo

    def for_strategy(self, strategy: str) -> ScoringRecommender:
        """The recommender a strategy names: the version's model, or its popularity lists."""
        if strategy == "popular":
            return self.popular
        if strategy == "trending":
            return self.trending
        return self.model


def load_version(version: ModelVersion) -> LoadedModel:
    """Load every artifact of a version, verifying checksums; raises ArtifactError."""
    popular = PopularityRecommender.load(version.path / "popular")
    trending = PopularityRecommender.load(version.path / "trending")
    model: ScoringRecommender = popular
    if version.algo != "popularity":
        try:
            model = algorithms.load(version.algo, version.path / "model")
        except ValueError as exc:
            raise ArtifactError(str(exc)) from None
    return LoadedModel(version, model, popular, trending, precomputed=_lists_of(version))


def _lists_of(version: ModelVersion) -> PrecomputedLists | None:
    """The version's precomputed lists, or None: they only save scoring, so lists that do
    not load (absent, older layout, failing a check while an erasure rewrites them) leave
    every reader scored live rather than refusing the version."""
    directory = version.path / "lists"
    if not directory.is_dir():
        return None
    try:
        return PrecomputedLists.load(directory)
    except ArtifactError as exc:
        log.warning("precomputed_lists_skipped", version=version.number, error=str(exc))
        return None


def load_popularity_only(version: ModelVersion, reason: str) -> LoadedModel:
    """A version's popularity lists alone: the last resort when no full model loads."""
    popular = PopularityRecommender.load(version.path / "popular")
    trending = PopularityRecommender.load(version.path / "trending")
    return LoadedModel(version, popular, popular, trending, reason)


class ModelStore:
    """The model this worker serves; `refresh` (from the refresher thread) switches it."""

    def __init__(
        self,
        registry: ModelRegistry,
        sessions: SessionFactory,
        on_switch: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()
        self._on_switch = on_switch
        self.wanted: int | None = None
        self.last_error: str | None = None
        self.refused_newer: list[int] = []  # refused versions newer than the one served
        self._gauges = served_model_gauges()

    def current(self) -> LoadedModel | None:
        """The model to serve now: an attribute read, never I/O."""
        return self._loaded

    def refresh(self) -> LoadedModel | None:
        """Serve the registry's active version if it loads; else keep or find a good one.

        Then publish what is served (`bookrec_model_version_served`, `bookrec_model_fallback`).
        """
        try:
            return self._refresh()
        finally:
            status = self.status()
            version, fallback = self._gauges
            version.set(status["version"] or 0)
            fallback.set(1 if status["fallback"] else 0)

    def _refresh(self) -> LoadedModel | None:
        with self._lock:
            with unit_of_work(self.sessions) as session:
                wanted = self.registry.active_number(session)
                self.wanted = wanted
                loaded = self._loaded
                if loaded is not None and loaded.number == wanted and not loaded.degraded:
                    return loaded
                version = None if wanted is None else self.registry.get(session, wanted)
            for _ in range(MAX_FALLBACKS):  # each refusal moves the registry to an older version
                if version is None:
                    break
                try:
                    self._swap(load_version(version))
                    self.last_error = None
                    return self._loaded
                except ArtifactError as exc:
                    self._note_error(version.number, exc)
                    with unit_of_work(self.sessions) as session:
                        version = self.registry.refuse(session, version.number, str(exc))
                    self.wanted = None if version is None else version.number
            if self._loaded is None or self._loaded.degraded:
                self._load_any_good()
            return self._loaded

    def _load_any_good(self) -> None:
        """No active version loads: the newest loadable one, then any popularity lists."""
        with unit_of_work(self.sessions) as session:
            candidates = self.registry.serving_candidates(session)
        for version in candidates:
            try:
                self._swap(load_version(version))
                return
            except ArtifactError as exc:
                self._note_error(version.number, exc)
        for version in candidates:
            try:
                reason = f"no model version loads ({self.last_error}); popularity lists only"
                self._swap(load_popularity_only(version, reason))
                return
            except ArtifactError:
                continue

    def _swap(self, loaded: LoadedModel) -> None:
        previous = self._loaded
        self._loaded = loaded
        if previous is None or previous.number != loaded.number:
            log.info("model_loaded", version=loaded.number, algo=loaded.algo)
            with unit_of_work(self.sessions) as session:
                self.refused_newer = [
                    v.number
                    for v in self.registry.versions(session)
                    if v.status == "refused" and v.number > loaded.number
                ]
            if self._on_switch is not None:
                self._on_switch(loaded)

    def _note_error(self, number: int, exc: Exception) -> None:
        message = f"version {number}: {exc}"
        if message != self.last_error:
            log.error("model_refused", version=number, error=str(exc))
        self.last_error = message

    def status(self) -> dict[str, Any]:
        """For readiness: what is served, what the registry wants, and why they differ."""
        loaded = self._loaded
        status: dict[str, Any] = {
            "version": loaded.number if loaded else None,
            "algo": loaded.algo if loaded else None,
            "active_version": self.wanted,
            "fallback": bool(
                loaded and (loaded.degraded or self.refused_newer or loaded.number != self.wanted)
            ),
        }
        if self.refused_newer:
            status["refused_versions"] = self.refused_newer
        if loaded and loaded.degraded:
            status["degraded"] = without_paths(loaded.degraded)
        if self.last_error:
            status["error"] = without_paths(self.last_error)
        return status


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^/\s:'\"(),]+)+/?")


def without_paths(text: str) -> str:
    """A reason fit for a public answer: file paths shortened to their last part
    ('/srv/bookrec/models/3/model/weights.npy fails...' -> 'weights.npy fails...')."""
    return _PATH.sub(lambda match: Path(match.group().rstrip("/")).name, text)
