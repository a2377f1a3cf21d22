"""Holds the active model version in memory and switches when the ACTIVE pointer moves.

Each API worker has one ModelStore. It checks the pointer at most every `poll_seconds`
(one stat and one small read), loads a new version completely before swapping it in, and
keeps serving the old one if the new one fails to load.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from bookrec.recsys import registry as algorithms
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.training.registry import ModelVersion, Registry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    info: dict[str, Any]
    model: ScoringRecommender
    popular: PopularityRecommender
    trending: PopularityRecommender

    @property
    def algo(self) -> str:
        return str(self.info.get("algo"))


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
    return LoadedModel(version.version, version.info, model, popular, trending)


class ModelStore:
    def __init__(self, registry: Registry, poll_seconds: float = 2.0) -> None:
        self.registry = registry
        self.poll_seconds = poll_seconds
        self._loaded: LoadedModel | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def current(self) -> LoadedModel | None:
        """The model to serve now, reloading first if the ACTIVE pointer moved."""
        now = time.monotonic()
        if now - self._checked_at >= self.poll_seconds:
            self.refresh()
        return self._loaded

    def refresh(self) -> LoadedModel | None:
        with self._lock:
            self._checked_at = time.monotonic()
            wanted = self.registry.active_version()
            if wanted is None or (self._loaded and self._loaded.version == wanted):
                return self._loaded
            try:
                version = self.registry.get(wanted)
                loaded = load_version(version)
            except (ArtifactError, OSError, KeyError, ValueError) as exc:
                if self.last_error != f"{wanted}: {exc}":
                    log.error("model_load_failed", version=wanted, error=str(exc))
                self.last_error = f"{wanted}: {exc}"
                return self._loaded
            except Exception as exc:  # a NotFound from the registry, or anything unexpected
                self.last_error = f"{wanted}: {exc}"
                log.error("model_load_failed", version=wanted, error=str(exc))
                return self._loaded
            self._loaded = loaded
            self.last_error = None
            log.info("model_loaded", version=loaded.version, algo=loaded.algo)
            return loaded
