"""The serving engine of one API worker (or one command): everything that answers lists.

A background thread (`Refresher`) keeps the served model and the book cards current, so a
request only ever reads what is already in memory:
- the active model version, checked every `poll_seconds` (one indexed SELECT) and at once
  when Redis announces an activation (`serving.loaded.ModelStore` switches it);
- the book cards (titles, authors, covers) and the books added or deleted since the model
  was trained (`serving.additions`), reloaded when the catalogue changes: checked every
  `cards_every` ticks (one indexed aggregate over `books`), at once when Redis announces a
  change, and at once in the worker that made it (`ServingEngine.catalogue_changed`).
Lists are answered by `RecommendationService` (`serving.service`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine

from bookrec.config import Settings
from bookrec.db.redis import fast_client
from bookrec.db.session import make_session_factory
from bookrec.model_registry.notify import activations_channel, redis_notifier
from bookrec.model_registry.registry import ModelRegistry
from bookrec.readers.repository import ActivityVersions
from bookrec.serving.books import CardStore
from bookrec.serving.cache import RecommendationCache
from bookrec.serving.experiments import ExperimentStore, ExposureLog
from bookrec.serving.loaded import LoadedModel, ModelStore
from bookrec.serving.service import RecommendationService

log = structlog.get_logger(__name__)

#: An announcement on the activations channel asking workers to drop a reader's lists.
FORGET = "forget:"
#: An announcement on the activations channel saying that books were added, edited or deleted.
CATALOGUE = "catalogue"


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
        on_forget: Callable[[int], object] | None = None,
        experiments: ExperimentStore | None = None,
        on_cards: Callable[[], object] | None = None,
    ) -> None:
        self.models = models
        #: reloads the cards (and what depends on them) when the catalogue changed
        self.refresh_cards: Callable[[], object] = on_cards or cards.refresh
        self.experiments = experiments
        self.on_forget = on_forget
        self.cards = cards
        self.poll_seconds = poll_seconds
        self.cards_every = cards_every
        self._redis = redis_client
        self._channel = channel
        self._wake = threading.Event()
        self._cards_due = threading.Event()
        self._model_number: int | None = None
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
            active = self.models.refresh()
            if self.experiments is not None:
                self.experiments.refresh(active)
            number = None if active is None else active.number
            if cards or number != self._model_number:  # the view is relative to the model
                self.refresh_cards()
                self._model_number = number
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
            due = self._cards_due.is_set()
            self._cards_due.clear()
            self.tick(cards=due or ticks % self.cards_every == 0)

    def announce_change(self) -> None:
        """Re-read the running experiment now (this worker answers by it from the next
        request), and tell every other worker (through Redis, when set) to do the same."""
        if self.experiments is not None:
            try:
                self.experiments.refresh(self.models.current())
            except Exception as exc:  # the refresher thread tries again within poll_seconds
                log.warning("experiments_refresh_failed", error=f"{type(exc).__name__}: {exc}")
                self.wake()
        if self._redis is None or not self._channel:
            return
        try:
            self._redis.publish(self._channel, "experiments")
        except Exception as exc:  # they poll too: the change reaches them within poll_seconds
            log.warning("change_announce_failed", error=f"{type(exc).__name__}: {exc}")

    def announce_catalogue(self) -> None:
        """Tell every worker (through Redis, when set) that books changed: they reload their
        cards at once instead of at their next card tick."""
        if self._redis is None or not self._channel:
            return
        try:
            self._redis.publish(self._channel, CATALOGUE)
        except Exception as exc:  # they check the catalogue every cards_every ticks anyway
            log.warning("change_announce_failed", error=f"{type(exc).__name__}: {exc}")

    def announce_forget(self, reader_id: int) -> None:
        """Tell every worker (through Redis, when set) to drop an erased reader's lists."""
        if self._redis is None or not self._channel:
            return
        try:
            self._redis.publish(self._channel, f"{FORGET}{reader_id}")
        except Exception as exc:  # their entries are unreachable anyway and expire
            log.warning("forget_announce_failed", error=f"{type(exc).__name__}: {exc}")

    def _heard(self, data: object) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        if text.startswith(FORGET):
            if self.on_forget is not None and text[len(FORGET) :].isdigit():
                self.on_forget(int(text[len(FORGET) :]))
            return
        if text == CATALOGUE:
            self._cards_due.set()
        self.wake()

    def _listen(self) -> None:
        """Wake the refresher on every activation announced on the Redis channel, and drop
        the lists of readers whose erasure is announced there."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                backoff = 1.0
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._heard(message.get("data"))
                pubsub.close()
            except Exception as exc:  # Redis down: polling still switches within poll_seconds
                log.warning("activation_channel_unavailable", error=f"{type(exc).__name__}: {exc}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)


@dataclass
class ServingEngine:
    """The served model, the book cards, the list cache, and the service answering lists."""

    models: ModelStore
    cards: CardStore
    cache: RecommendationCache
    refresher: Refresher
    recommendations: RecommendationService
    experiments: ExperimentStore | None
    exposures: ExposureLog | None

    @classmethod
    def of(cls, settings: Settings, engine: Engine, experiments: bool = True) -> ServingEngine:
        """Wire an engine from settings (Redis for the cache and activations when set).

        With `experiments` (API workers) personal lists follow the running experiment and
        log what they show; a command answers with the active model alone."""
        sessions = make_session_factory(engine)
        cache_redis = activations_redis = None
        if settings.redis_url:
            import redis

            cache_redis = fast_client(settings.redis_url)
            activations_redis = redis.Redis.from_url(settings.redis_url)
        cache = RecommendationCache(
            settings.cache_size, settings.cache_ttl_seconds, cache_redis, settings.redis_prefix
        )
        registry = ModelRegistry(settings.models_dir, redis_notifier(settings))
        models = ModelStore(registry, sessions, on_switch=lambda _loaded: cache.clear_local())
        cards = CardStore(sessions)
        store = ExperimentStore(registry, sessions) if experiments else None
        exposures = ExposureLog(sessions) if experiments else None
        # a look-up on the event loop only when it is a local read (SQLite, no Redis)
        inline = engine.dialect.name == "sqlite" and not cache.needs_network
        versions = ActivityVersions(engine) if inline else None
        service = RecommendationService(
            sessions,
            models,
            cards,
            cache,
            versions,
            store,
            exposures,
            scoring_threads=settings.scoring_threads,
        )
        refresher = Refresher(
            models,
            cards,
            settings.model_poll_seconds,
            activations_redis,
            activations_channel(settings),
            on_forget=cache.forget_reader,
            experiments=store,
            on_cards=service.refresh_catalogue,
        )
        return cls(models, cards, cache, refresher, service, store, exposures)

    def current(self) -> LoadedModel | None:
        return self.models.current()

    def load_once(self) -> None:
        """Load the model and cards now, without the background thread (a command's use)."""
        self.refresher.tick(cards=True)

    def catalogue_changed(self) -> None:
        """After this worker committed a change to books: answer by it from the next request
        on, and have the other workers reload theirs now (Redis) or at their next card tick."""
        self.recommendations.refresh_catalogue()
        self.refresher.announce_catalogue()

    def start(self) -> None:
        self.refresher.start()
        if self.exposures is not None:
            self.exposures.start()

    def stop(self) -> None:
        self.refresher.stop()
        if self.exposures is not None:
            self.exposures.stop()
        if self.recommendations.versions is not None:
            self.recommendations.versions.close()
