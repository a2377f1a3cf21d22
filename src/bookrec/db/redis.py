"""Redis on the request path: clients that give up fast, and the fallback when Redis is down.

Redis is optional everywhere bookrec uses it (the shared list cache, rate limits): when it
fails, each user logs once, carries on with its per-worker fallback and asks Redis again
after `RETRY_SECONDS`. `RedisFallback` is that rule, in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: How long a user of Redis keeps to its fallback before it tries Redis again.
RETRY_SECONDS = 30.0


def fast_client(url: str, timeout: float = 0.25) -> Any:
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


class RedisFallback:
    """Whether to ask Redis now: not for `retry_seconds` after it failed.

    `what` names the user in the log lines ("recommendation cache", "rate limits"); `clock`
    is injectable so tests move time instead of sleeping.
    """

    def __init__(
        self,
        what: str,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @property
    def failing(self) -> bool:
        """Redis failed and has not answered since (whether or not it is time to ask again)."""
        return self._down_since is not None

    @property
    def down(self) -> bool:
        """Redis failed and its retry time has not come yet."""
        with self._lock:
            since = self._down_since
        return since is not None and self._clock() - since < self.retry_seconds

    def failed(self, exc: BaseException) -> None:
        """Redis just failed: skip it from now on for `retry_seconds` (logged once an outage)."""
        with self._lock:
            first = self._down_since is None
            self._down_since = self._clock()
        if first:
            log.warning(
                "redis_unavailable",
                used_for=self.what,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=self.retry_seconds,
            )

    def succeeded(self) -> None:
        """Redis answered: forget an outage (logged when there was one)."""
        if self._down_since is None:  # the common case: no lock taken
            return
        with self._lock:
            was_down, self._down_since = self._down_since is not None, None
        if was_down:
            log.info("redis_recovered", used_for=self.what)
