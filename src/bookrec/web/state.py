"""What the pages read from the worker's state, named as the web layer needs it.

The lifespan of `api.app.create_app` builds the state (`api.state.AppState`); the web layer
sits below the API in the layers contract, so it states here what it relies on instead of
importing the API's types.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import Request
from limits import RateLimitItem
from sqlalchemy import Engine

from bookrec.accounts.service import Authenticator
from bookrec.config import Settings
from bookrec.db.session import SessionFactory
from bookrec.serving.engine import ServingEngine


class LoginLimits(Protocol):
    """The limits on logging in and registering (`api.ratelimit.Limits`)."""

    @property
    def login_ip(self) -> RateLimitItem: ...
    @property
    def login_email(self) -> RateLimitItem: ...
    @property
    def login_account(self) -> RateLimitItem: ...
    @property
    def register_ip(self) -> RateLimitItem: ...


class Limiter(Protocol):
    """The worker's rate limiter (`api.ratelimit.RateLimiter`): the API's buckets, shared."""

    @property
    def limits(self) -> LoginLimits: ...
    def hit(self, item: RateLimitItem, scope: str, identity: str) -> None: ...
    def check(self, item: RateLimitItem, scope: str, identity: str) -> None: ...


class WebState(Protocol):
    """The worker's state as the pages use it (`api.state.AppState` has these and more)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def sessions(self) -> SessionFactory: ...
    @property
    def serving(self) -> ServingEngine: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def rate_limiter(self) -> Limiter: ...


def state_of(request: Request) -> WebState:
    """What the lifespan built for this worker."""
    state: WebState = request.app.state.bookrec
    return state
