"""The serving engine of one API worker: the active model, book cards and the list cache.

A background thread (`Refresher`) keeps them current, so a request only ever reads what is
already in memory:
- the active model version, checked every `poll_seconds` (one indexed SELECT) and at once
  when Redis announces an activation; a new version is loaded completely (every checksum
  verified, arrays memory-mapped so workers share their pages) before it is swapped in, so
  requests during a switch are answered by the old model or the new one, never by neither;
- a version whose artifact is missing or fails its checksum is refused in the registry
  (which falls back to the newest good version) and the worker keeps serving what it has;
  with no loadable version at all it serves a version's popularity lists alone;
- the book cards (titles, authors, covers), reloaded when the catalogue changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine

from bookrec.config import Settings
from bookrec.interactions.repository import ActivityStamps
from bookrec.recsys import registry as algorithms
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.serving.books import BookCards
from bookrec.serving.cache import RecommendationCache, redis_client
from bookrec.serving.precomputed import PrecomputedLists
from bookrec.training.registry import ModelVersion, Registry, redis_notifier

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    info: dict[str, Any]
    model: ScoringRecommender
    popular: PopularityRecommender
    trending: PopularityRecommender
    #: why this worker serves something less than the version's full model (None: it does not)
    degraded: str | None = None
    #: every reader's list as of training (None: the version has none)
    precomputed: PrecomputedLists | None = None

    @property
    def algo(self) -> str:
        return "popularity" if self.degraded else str(self.info.get("algo"))


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
    lists = version.path / "lists"
    precomputed = PrecomputedLists.load(lists) if lists.is_dir() else None
    return LoadedModel(
        version.version, version.info, model, popular, trending, precomputed=precomputed
    )


def load_popularity_only(version: ModelVersion, reason: str) -> LoadedModel:
    """A version's popularity lists alone: the last resort when no full model loads."""
    popular = PopularityRecommender.load(version.path / "popular")
    trending = PopularityRecommender.load(version.path / "trending")
    return LoadedModel(version.version, version.info, popular, popular, trending, reason)


class VersionSource(Protocol):
    """What the engine needs from the model registry."""

    def active_version(self) -> str | None: ...

    def get(self, version: str) -> ModelVersion: ...

    def serving_candidates(self) -> list[ModelVersion]: ...

    def refuse(self, version: str, reason: str) -> ModelVersion | None: ...

    def versions(self) -> list[ModelVersion]: ...


class ModelStore:
    """The model this worker serves; `refresh` (from the refresher thread) switches it."""

    def __init__(
        self, registry: VersionSource, on_switch: Callable[[LoadedModel], None] | None = None
    ) -> None:
        self.registry = registry
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()
        self._on_switch = on_switch
        self.wanted: str | None = None
        self.last_error: str | None = None
        self.refused_newer: list[str] = []  # refused versions newer than the one served

    def current(self) -> LoadedModel | None:
        """The model to serve now: an attribute read, never I/O."""
        return self._loaded

    def refresh(self) -> LoadedModel | None:
        """Serve the registry's active version if it loads; else keep or find a good one."""
        with self._lock:
            wanted = self.registry.active_version()
            self.wanted = wanted
            loaded = self._loaded
            if loaded is not None and loaded.version == wanted and not loaded.degraded:
                return loaded
            for _ in range(8):  # each refusal moves the registry to an older version
                if wanted is None:
                    break
                try:
                    self._swap(load_version(self.registry.get(wanted)))
                    self.last_error = None
                    return self._loaded
                except ArtifactError as exc:
                    self._note_error(wanted, exc)
                    fallback = self.registry.refuse(wanted, str(exc))
                    wanted = fallback.version if fallback is not None else None
                    self.wanted = wanted
            if self._loaded is None or self._loaded.degraded:
                self._load_any_good()
            return self._loaded

    def _load_any_good(self) -> None:
        """No active version loads: the newest loadable one, then any popularity lists."""
        candidates = self.registry.serving_candidates()
        for version in candidates:
            try:
                self._swap(load_version(version))
                return
            except ArtifactError as exc:
                self._note_error(version.version, exc)
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
        if previous is None or previous.version != loaded.version:
            log.info("model_loaded", version=loaded.version, algo=loaded.algo)
            self.refused_newer = [
                v.version
                for v in self.registry.versions()
                if v.status == "refused" and int(v.version) > int(loaded.version)
            ]
            if self._on_switch is not None:
                self._on_switch(loaded)

    def _note_error(self, version: str, exc: Exception) -> None:
        message = f"version {version}: {exc}"
        if message != self.last_error:
            log.error("model_refused", version=version, error=str(exc))
        self.last_error = message

    def status(self) -> dict[str, Any]:
        """For readiness: what is served, what the registry wants, and why they differ."""
        loaded = self._loaded
        status: dict[str, Any] = {
            "version": loaded.version if loaded else None,
            "algo": loaded.algo if loaded else None,
            "active_version": self.wanted,
            "fallback": bool(
                loaded and (loaded.degraded or self.refused_newer or loaded.version != self.wanted)
            ),
        }
        if self.refused_newer:
            status["refused_versions"] = self.refused_newer
        if loaded and loaded.degraded:
            status["degraded"] = loaded.degraded
        if self.last_error:
            status["error"] = self.last_error
        return status


class CardStore:
    """The book cards of this worker, reloaded when the catalogue changes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cards = BookCards.empty()

    def refresh(self) -> None:
        with self.engine.connect() as connection:
            if self.cards.stamp and BookCards.stamp_of(connection) == self.cards.stamp:
                return
            self.cards = BookCards.load(connection)


class Refresher:
    """A daemon thread keeping the model and the cards current; Redis can wake it early."""

    def __init__(
        self,
        models: ModelStore,
        cards: CardStore,
        poll_seconds: float,
        redis_client: Any = None,
        channel: str | None = None,
        cards_every: int = 5,
    ) -> None:
        self.models = models
        self.cards = cards
        self.poll_seconds = poll_seconds
        self.cards_every = cards_every
        self._redis = redis_client
        self._channel = channel
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.tick(cards=True)
        self._threads = [threading.Thread(target=self._run, name="bookrec-refresh", daemon=True)]
        if self._redis is not None and self._channel:
            self._threads.append(
                threading.Thread(target=self._listen, name="bookrec-activations", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def wake(self) -> None:
        self._wake.set()

    def tick(self, cards: bool) -> None:
        try:
            self.models.refresh()
            if cards:
                self.cards.refresh()
        except Exception as exc:  # a database blip must not kill the thread: try again later
            log.warning("serving_refresh_failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            ticks += 1
            self.tick(cards=ticks % self.cards_every == 0)

    def _listen(self) -> None:
        """Wake the refresher on every activation announced on the Redis channel."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                backoff = 1.0
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self.wake()
                pubsub.close()
            except Exception as exc:  # Redis down: polling still switches within poll_seconds
                log.warning("activation_channel_unavailable", error=f"{type(exc).__name__}: {exc}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)


@dataclass
class ServingEngine:
    """Everything a worker needs to answer recommendation requests from memory."""

    models: ModelStore
    cards: CardStore
    cache: RecommendationCache
    refresher: Refresher
    #: the event loop's own reader of activity stamps, when the per-request look-up (one
    #: indexed query, the cache) may run on the loop: with SQLite and no Redis it is an
    #: in-process read of a few pages, cheaper than a thread-pool hop; a network round trip
    #: (PostgreSQL, Redis) must not block the loop, so then there is none
    stamps: ActivityStamps | None = None

    @property
    def lookups_inline(self) -> bool:
        return self.stamps is not None

    @classmethod
    def of(cls, settings: Settings, engine: Engine) -> ServingEngine:
        """Wire a worker's engine from settings (Redis for cache and activations when set)."""
        cache_redis = activations_redis = None
        if settings.redis_url:
            import redis

            cache_redis = redis_client(settings.redis_url)
            activations_redis = redis.Redis.from_url(settings.redis_url)
        cache = RecommendationCache(
            settings.cache_size, settings.cache_ttl_seconds, cache_redis, settings.redis_prefix
        )
        registry = Registry(engine, settings.models_dir, redis_notifier(settings))
        models = ModelStore(registry, on_switch=lambda _loaded: cache.clear_local())
        cards = CardStore(engine)
        refresher = Refresher(
            models,
            cards,
            settings.model_poll_seconds,
            activations_redis,
            f"{settings.redis_prefix}models",
        )
        inline = engine.dialect.name == "sqlite" and cache_redis is None
        return cls(models, cards, cache, refresher, ActivityStamps(engine) if inline else None)

    def current(self) -> LoadedModel | None:
        return self.models.current()

    def start(self) -> None:
        self.refresher.start()

    def stop(self) -> None:
        self.refresher.stop()
        if self.stamps is not None:
            self.stamps.close()
