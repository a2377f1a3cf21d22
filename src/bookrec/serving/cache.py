"""Finished recommendation lists, cached in the worker and (when configured) in Redis.

A key names everything a list depends on: the model version, the strategy and its
parameters, the reader, and a stamp of the reader's ratings and shelf (computed by the
database in the same query that finds the reader). A rating, an un-rating or a shelving
changes the stamp and a model activation changes the version, so a stale list is never
served, in this worker or any other, without having to find and delete entries. Values are
the response bodies (JSON bytes), ready to send.

Redis is an optional second level shared by all workers. When it fails, the cache logs once,
stops asking it for `REDIS_RETRY_SECONDS`, and serving carries on from the worker's own level.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import structlog
from cachetools import TTLCache

log = structlog.get_logger(__name__)

REDIS_RETRY_SECONDS = 30.0


def redis_client(url: str, timeout: float = 0.25) -> Any:
    """A Redis client for the request path: short timeouts and no retries, so a Redis that is
    down or slow costs a request a fraction of a second once, then is skipped."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )


def cache_key(parts: Iterable[object]) -> str:
    return ":".join(str(part) for part in parts)


class RecommendationCache:
    """TTL LRU in the worker, then Redis; both optional (size 0 / no client disables)."""

    def __init__(
        self,
        size: int,
        ttl_seconds: float,
        redis_client: object | None = None,
        prefix: str = "bookrec:",
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._local: TTLCache[str, bytes] | None = (
            TTLCache(maxsize=size, ttl=ttl_seconds) if size > 0 and ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._redis = redis_client
        self._prefix = f"{prefix}recs:"
        self._redis_down_until = 0.0

    def get(self, key: str) -> bytes | None:
        if self._local is not None:
            with self._lock:
                found = self._local.get(key)
            if found is not None:
                return found
        shared = self._redis_call("get", key)
        if isinstance(shared, bytes):
            if self._local is not None:
                with self._lock:
                    self._local[key] = shared
            return shared
        return None

    def put(self, key: str, body: bytes) -> None:
        if self._local is not None:
            with self._lock:
                self._local[key] = body
        self._redis_call("set", key, body)

    def clear_local(self) -> None:
        """Drop this worker's entries (after a model switch: they can never be hit again)."""
        if self._local is not None:
            with self._lock:
                self._local.clear()

    def _redis_call(self, operation: str, key: str, body: bytes | None = None) -> object:
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return None
        try:
            if operation == "get":
                return self._redis.get(self._prefix + key)  # type: ignore[attr-defined]
            self._redis.set(  # type: ignore[attr-defined]
                self._prefix + key, body, ex=max(1, int(self.ttl_seconds))
            )
        except Exception as exc:  # redis-py raises many kinds; any means "skip Redis for now"
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning(
                "recommendation_cache_redis_unavailable",
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=REDIS_RETRY_SECONDS,
            )
        return None
