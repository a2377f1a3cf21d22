"""The rate limits as request dependencies (the limiter itself is `api.ratelimit`)."""

from __future__ import annotations

import hashlib

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bookrec.accounts.service import normalise_email
from bookrec.accounts.tokens import decode_access_token
from bookrec.api.deps import StateDep, state_of
from bookrec.errors import BookrecError


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def general_limit(request: Request) -> None:
    """Per client: the user of a valid access token, else the IP address.

    An API key is not verified here (that needs the database), so it cannot name its own
    bucket: a caller sending made-up keys would get a fresh allowance with each one. Key
    holders are counted by address like anonymous callers. Counting in memory happens on the
    event loop; counting in Redis (network I/O) in the thread pool.
    """
    if request.scope["path"].startswith("/health"):  # request.url would build a whole URL
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
    who = identity or f"ip:{_client_ip(request)}"
    if limiter.may_block:
        await run_in_threadpool(limiter.hit, limiter.limits.general, "general", who)
    else:
        limiter.hit(limiter.limits.general, "general", who)


def login_ip_limit(request: Request, state: StateDep) -> None:
    limiter = state.rate_limiter
    limiter.hit(limiter.limits.login_ip, "login-ip", _client_ip(request))


def register_ip_limit(request: Request, state: StateDep) -> None:
    limiter = state.rate_limiter
    limiter.hit(limiter.limits.register_ip, "register-ip", _client_ip(request))


def login_email_limit(state: StateDep, email: str) -> None:
    """Count a login attempt for this account, whether or not the account exists."""
    limiter = state.rate_limiter
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]
    limiter.hit(limiter.limits.login_email, "login-email", digest)
