"""The rate limits as request dependencies (the limiter itself is `api.ratelimit`)."""

from __future__ import annotations

from contextlib import suppress

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bookrec.accounts import api_keys
from bookrec.accounts.service import email_key
from bookrec.accounts.tokens import decode_access_token
from bookrec.api.deps import StateDep, state_of
from bookrec.api.ratelimit import RateLimiter
from bookrec.errors import BookrecError, TooManyRequests


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def general_limit(request: Request) -> None:
    """Per client: the user of a valid access token, else the IP address.

    An API key this worker verified lately (in memory, no I/O) counts against its own, larger
    allowance (`BOOKREC_RATE_LIMIT_API_KEY`: an app's backend asks for many readers). Any
    other key is not verified here (that needs the database), so it cannot name its own
    bucket: a caller sending made-up keys would get a fresh allowance with each one; such a
    request is counted by address like an anonymous one (its key's first use, or a made-up
    key). Counting in memory happens on the event loop; counting in Redis in the thread pool.
    """
    # probes and scrapes are never limited (request.url would build a whole URL)
    if request.scope["path"].startswith(("/health", "/metrics")):
        return
    state = state_of(request)  # every request: no StateDep
    limiter = state.rate_limiter
    identity: str | None = None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            identity = f"user:{decode_access_token(state.auth.tokens, token.strip()).user_id}"
        except BookrecError:
            identity = None
    address = f"ip:{_client_ip(request)}"
    secret = request.headers.get("x-api-key")
    if secret and identity is None:
        key = state.auth.verified_keys.get(api_keys.hash_key(secret))
        if key is not None:
            identity = f"key:{key.key_id}"
    if limiter.may_block:
        await run_in_threadpool(_count_general, limiter, identity, address)
    else:
        _count_general(limiter, identity, address)


def _count_general(limiter: RateLimiter, identity: str | None, address: str) -> None:
    """The caller's own allowance, and their address's (shared by every account on it)."""
    limits = limiter.limits
    if identity is not None and identity.startswith("key:"):
        limiter.hit(limits.api_key, "api-key", identity)
    elif identity is not None:
        limiter.hit(limits.general, "general", identity)
        limiter.hit(limits.general_address, "general-address", address)
    else:
        limiter.hit(limits.general, "general", address)


def login_ip_limit(request: Request, state: StateDep) -> None:
    limiter = state.rate_limiter
    limiter.hit(limiter.limits.login_ip, "login-ip", _client_ip(request))


def register_ip_limit(request: Request, state: StateDep) -> None:
    limiter = state.rate_limiter
    limiter.hit(limiter.limits.register_ip, "register-ip", _client_ip(request))


def login_email_limit(request: Request, state: StateDep, email: str) -> None:
    """Count a login attempt for this account from this address (whether or not the account
    exists): a hard limit, which a stranger's attempts from elsewhere never touch."""
    limiter = state.rate_limiter
    who = f"{email_key(email)}:{_client_ip(request)}"
    limiter.hit(limiter.limits.login_email, "login-email", who)


def check_login_account_limit(state: StateDep, email: str) -> None:
    """Refuse an unrecognised device once the account's failed logins are used up."""
    limiter = state.rate_limiter
    limiter.check(limiter.limits.login_account, "login-account", email_key(email))


def count_login_failure(state: StateDep, email: str) -> None:
    """One more failed login on this account from an unrecognised device."""
    limiter = state.rate_limiter
    # this failure is answered as a failure (401); the next attempt meets the limit
    with suppress(TooManyRequests):
        limiter.hit(limiter.limits.login_account, "login-account", email_key(email))
