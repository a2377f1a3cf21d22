"""Rate limits with `limits`: Redis shared by every worker, in-memory when Redis is away.

Redis down never fails a request: the limiter counts in memory (per worker) meanwhile
(`bookrec.db.redis.RedisFallback`). The request dependencies that apply the limits are in
`api.limits`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from bookrec.config import Settings
from bookrec.db.redis import RETRY_SECONDS, RedisFallback
from bookrec.errors import TooManyRequests
from bookrec.observability.metrics import RATE_LIMITED

#: Redis must answer quickly: a slow rate limit store must not slow every request.
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Limits:
    """The configured limits, parsed once."""

    login_ip: RateLimitItem
    login_email: RateLimitItem  # per (account, address)
    login_account: RateLimitItem  # failures per account from devices it never logged in on
    register_ip: RateLimitItem
    general: RateLimitItem  # per account, or per address without a token
    general_address: RateLimitItem
    api_key: RateLimitItem  # per API key (a backend asking for many readers)

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            login_ip=parse(settings.rate_limit_login_ip),
            login_email=parse(settings.rate_limit_login_email),
            login_account=parse(settings.rate_limit_login_account),
            register_ip=parse(settings.rate_limit_register_ip),
            general=parse(settings.rate_limit_general),
            general_address=parse(settings.rate_limit_general_address),
            api_key=parse(settings.rate_limit_api_key),
        )


class RateLimiter:
    """Counts hits per (limit, identity); Redis when configured, memory as the fallback."""

    def __init__(
        self,
        limits: Limits,
        redis_url: str | None = None,
        key_prefix: str = "bookrec:",
        *,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: MovingWindowRateLimiter | None = None
        self.fallback = RedisFallback("rate limits", retry_seconds, clock)
        if redis_url is not None:
            storage: Storage = RedisStorage(
                redis_url,
                key_prefix=f"{key_prefix}ratelimit",
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._redis = MovingWindowRateLimiter(storage)

    @classmethod
    def of(cls, settings: Settings) -> RateLimiter:
        return cls(Limits.of(settings), settings.redis_url, settings.redis_prefix)

    def close(self) -> None:
        """Release the Redis connections (at shutdown)."""
        if self._redis is not None:
            client = getattr(self._redis.storage, "storage", None)
            if client is not None:
                client.close()

    @property
    def may_block(self) -> bool:
        """Whether a hit may wait on the network (Redis is configured, up or not)."""
        return self._redis is not None

    @property
    def using_redis(self) -> bool:
        return self._redis is not None and not self.fallback.failing

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> None:
        """Count one hit; raise TooManyRequests (with the seconds to wait) over the limit."""
        self._apply(item, scope, identity, count=True)

    def check(self, item: RateLimitItem, scope: str, identity: str) -> None:
        """Raise TooManyRequests if the limit is used up, without counting a hit."""
        self._apply(item, scope, identity, count=False)

    def _apply(self, item: RateLimitItem, scope: str, identity: str, *, count: bool) -> None:
        redis = self._redis
        if redis is not None and not self.fallback.down:
            try:
                allowed = (redis.hit if count else redis.test)(item, scope, identity)
                retry_at = None if allowed else redis.get_window_stats(item, scope, identity)[0]
            except (StorageError, OSError) as exc:
                self.fallback.failed(exc)
            else:
                self.fallback.succeeded()
                self._raise_if_limited(item, scope, retry_at)
                return
        memory = self._memory
        allowed = (memory.hit if count else memory.test)(item, scope, identity)
        retry_at = None if allowed else memory.get_window_stats(item, scope, identity)[0]
        self._raise_if_limited(item, scope, retry_at)

    @staticmethod
    def _raise_if_limited(item: RateLimitItem, scope: str, retry_at: float | None) -> None:
        if retry_at is None:
            return
        RATE_LIMITED.labels(scope).inc()  # scopes are the fixed names of `api.limits`
        retry_after = max(1, math.ceil(retry_at - time.time()))
        raise TooManyRequests(
            f"too many requests: at most {item.amount} per {item.multiples} "
            f"{item.GRANULARITY.name}; try again in {retry_after} s",
            retry_after=retry_after,
        )
