"""What the lifespan builds once per worker and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from bookrec.accounts.service import Authenticator
from bookrec.api.ratelimit import RateLimiter
from bookrec.config import Settings
from bookrec.db.session import SessionFactory
from bookrec.serving.engine import ServingEngine


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: SessionFactory
    serving: ServingEngine
    auth: Authenticator
    rate_limiter: RateLimiter
