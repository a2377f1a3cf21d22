"""Finished recommendation lists, cached in the worker and (when configured) in Redis.

A key names everything a list depends on: the model version, the strategy and its
parameters, the reader and their activity version (read with the reader's id, one indexed
row). A rating, an un-rating or a shelving moves the activity version and an activation
changes the model version, so an entry is never served for a later state, in this worker or
any other, without anyone having to find and delete entries. Values are the response bodies
(JSON bytes), ready to send. Entries live `BOOKREC_CACHE_TTL_SECONDS` at most.

Redis is an optional second level shared by all workers; when it fails, the cache carries on
from the worker's own level (`bookrec.db.redis.RedisFallback`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from cachetools import TTLCache

from bookrec.db.redis import RedisFallback
from bookrec.observability.metrics import CACHE_HIT, CACHE_MISS


def cache_key(parts: Iterable[object]) -> str:
    return ":".join(str(part) for part in parts)


def _reader_of(key: str) -> int | None:
    """The reader a personal list's key is for (version:strategy:digest:reader:activity),
    None for any other key."""
    parts = key.split(":")
    if len(parts) != 5 or not parts[3].isdigit():
        return None
    return int(parts[3])


class RecommendationCache:
    """TTL LRU in the worker, then Redis; both optional (size 0 / no client disables)."""

    def __init__(
        self,
        size: int,
        ttl_seconds: float,
        redis_client: Any = None,
        prefix: str = "bookrec:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._local: TTLCache[str, bytes] | None = (
            TTLCache(maxsize=size, ttl=ttl_seconds, timer=clock)
            if size > 0 and ttl_seconds > 0
            else None
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._redis = redis_client
        self._prefix = f"{prefix}recs:"
        self.fallback = RedisFallback("recommendation cache", clock=clock)

    @property
    def needs_network(self) -> bool:
        """Whether a look-up may wait on Redis (then it must not run on an event loop)."""
        return self._redis is not None

    def get(self, key: str) -> bytes | None:
        """The cached body, or None; counted as a hit or a miss (`bookrec_cache_lookups`)."""
        found = self._get(key)
        (CACHE_MISS if found is None else CACHE_HIT).inc()
        return found

    def _get(self, key: str) -> bytes | None:
        if self._local is not None:
            with self._lock:
                found = self._local.get(key)
            if found is not None:
                return found
        if self._redis is None or self.fallback.down:
            return None
        try:
            shared = self._redis.get(self._prefix + key)
        except Exception as exc:  # redis-py raises many kinds; any means "skip Redis for now"
            self.fallback.failed(exc)
            return None
        self.fallback.succeeded()
        if isinstance(shared, bytes) and self._local is not None:
            with self._lock:
                self._local[key] = shared
        return shared if isinstance(shared, bytes) else None

    def put(self, key: str, body: bytes) -> None:
        if self._local is not None:
            with self._lock:
                self._local[key] = body
        if self._redis is None or self.fallback.down:
            return
        try:
            self._redis.set(self._prefix + key, body, ex=max(1, int(self.ttl_seconds)))
        except Exception as exc:  # as in `get`
            self.fallback.failed(exc)
            return
        self.fallback.succeeded()

    def forget_reader(self, reader_id: int) -> int:
        """Drop every list cached for one reader (an erased account), here and in Redis;
        returns how many entries went."""
        removed = 0
        if self._local is not None:
            with self._lock:
                theirs = [key for key in self._local if _reader_of(key) == reader_id]
                for key in theirs:
                    self._local.pop(key, None)
            removed += len(theirs)
        if self._redis is None or self.fallback.down:
            return removed
        try:
            found = self._redis.scan_iter(match=f"{self._prefix}*:{reader_id}:*", count=1000)
            names = [name.decode() if isinstance(name, bytes) else str(name) for name in found]
            shared = [n for n in names if _reader_of(n.removeprefix(self._prefix)) == reader_id]
            if shared:
                removed += int(self._redis.delete(*shared))
        except Exception as exc:  # as in `get`
            self.fallback.failed(exc)
        return removed

    def clear_local(self) -> None:
        """Drop this worker's entries (after a model switch: they can never be hit again)."""
        if self._local is not None:
            with self._lock:
                self._local.clear()
