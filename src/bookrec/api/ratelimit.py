"""Rate limits with `limits`: Redis shared by every worker, in-memory when Redis is away.

Redis down never fails a request: the limiter logs one warning, counts in memory (per worker)
and tries Redis again after `REDIS_RETRY_SECONDS`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from bookrec.accounts.service import normalise_email
from bookrec.accounts.tokens import decode_access_token
from bookrec.config import Settings
from bookrec.errors import BookrecError, TooManyRequests

if TYPE_CHECKING:
    from bookrec.api.state import AppState

log = structlog.get_logger(__name__)

#: How long the limiter counts in memory before it tries an unreachable Redis again.
REDIS_RETRY_SECONDS = 30.0
#: Redis must answer quickly: a slow rate limit store must not slow every request.
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Limits:
    """The configured limits, parsed once."""

    login_ip: RateLimitItem
    login_email: RateLimitItem
    register_ip: RateLimitItem
    general: RateLimitItem

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            login_ip=parse(settings.rate_limit_login_ip),
            login_email=parse(settings.rate_limit_login_email),
            register_ip=parse(settings.rate_limit_register_ip),
            general=parse(settings.rate_limit_general),
        )


class RateLimiter:
    """Counts hits per (limit, identity); Redis when configured, memory as the fallback."""

    def __init__(
        self,
        limits: Limits,
        redis_url: str | None = None,
        key_prefix: str = "bookrec:",
        *,
        retry_seconds: float = REDIS_RETRY_SECONDS,
    ) -> None:
        self.limits = limits
        self.retry_seconds = retry_seconds
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_down_since: float | None = None
        self._lock = threading.Lock()
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
        return self._redis is not None and self._redis_down_since is None

    def _redis_usable(self) -> MovingWindowRateLimiter | None:
        if self._redis is None:
            return None
        with self._lock:
            down_since = self._redis_down_since
            if down_since is not None and time.monotonic() - down_since < self.retry_seconds:
                return None
        return self._redis

    def _redis_failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._redis_down_since is None
            self._redis_down_since = time.monotonic()
        if first:
            log.warning(
                "ratelimit_redis_unavailable",
                error=str(exc),
                fallback="memory",
                retry_seconds=self.retry_seconds,
            )

    def _redis_recovered(self) -> None:
        with self._lock:
            was_down = self._redis_down_since is not None
            self._redis_down_since = None
        if was_down:
            log.info("ratelimit_redis_recovered")

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> None:
        """Count one hit; raise TooManyRequests (with the seconds to wait) over the limit."""
        redis = self._redis_usable()
        if redis is not None:
            try:
                allowed = redis.hit(item, scope, identity)
                retry_at = None if allowed else redis.get_window_stats(item, scope, identity)[0]
            except (StorageError, OSError) as exc:
                self._redis_failed(exc)
            else:
                self._redis_recovered()
                self._raise_if_limited(item, retry_at)
                return
        allowed = self._memory.hit(item, scope, identity)
        retry_at = None if allowed else self._memory.get_window_stats(item, scope, identity)[0]
        self._raise_if_limited(item, retry_at)

    @staticmethod
    def _raise_if_limited(item: RateLimitItem, retry_at: float | None) -> None:
        if retry_at is None:
            return
        retry_after = max(1, math.ceil(retry_at - time.time()))
        raise TooManyRequests(
            f"too many requests: at most {item.amount} per {item.multiples} "
            f"{item.GRANULARITY.name}; try again in {retry_after} s",
            retry_after=retry_after,
        )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.bookrec
    return state


async def general_limit(request: Request) -> None:
    """Per client: the user of a valid access token, else the IP address.

    An API key is not verified here (that needs the database), so it cannot name its own
    bucket: a caller sending made-up keys would get a fresh allowance with each one. Key
    holders are counted by address like anonymous callers. Counting in memory happens on the
    event loop; counting in Redis (network I/O) in the thread pool.
    """
    if request.scope["path"].startswith("/health"):  # request.url builds a whole URL
        return
    state = _state(request)
    limiter = state.rate_limiter
    identity: str | None = None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            identity = f"user:{decode_access_token(state.auth.tokens, token.strip()).user_id}"
        except BookrecError:
            identity = None
    who = identity or f"ip:{_client_ip(request)}"
    if limiter.may_block:
        await run_in_threadpool(limiter.hit, limiter.limits.general, "general", who)
    else:
        limiter.hit(limiter.limits.general, "general", who)


def login_ip_limit(request: Request) -> None:
    limiter = _state(request).rate_limiter
    limiter.hit(limiter.limits.login_ip, "login-ip", _client_ip(request))


def register_ip_limit(request: Request) -> None:
    limiter = _state(request).rate_limiter
    limiter.hit(limiter.limits.register_ip, "register-ip", _client_ip(request))


def login_email_limit(request: Request, email: str) -> None:
    """Count a login attempt for this account, whether or not the account exists."""
    limiter = _state(request).rate_limiter
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]
    limiter.hit(limiter.limits.login_email, "login-email", digest)
