"""API keys for app backends: created by admins, shown once, stored as sha256, scoped, revocable.

A key reads `brk_<prefix><rest>`; the first 8 characters after `brk_` are kept in clear as the
prefix so admins can tell keys apart. Only the sha256 of the whole key is stored; a presented
key is checked by looking its hash up (an index probe on a uniformly random digest), so no
stored secret is ever compared character by character.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cachetools import TTLCache
from sqlalchemy import JSON, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from bookrec.accounts import audit
from bookrec.accounts.audit import Origin
from bookrec.accounts.models import User
from bookrec.db.base import Base, UTCDateTime, utcnow
from bookrec.db.paging import page_of_objects
from bookrec.errors import Forbidden, InvalidInput, NotFound, Unauthorized

KEY_MARKER = "brk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
PREFIX_LENGTH = 8
#: Every scope a key may carry, with what it allows.
SCOPES: dict[str, str] = {
    "recommendations:read": "recommendations for any reader of the data set",
    "events:write": "report views, clicks and impressions of any reader of the data set",
}
API_KEY_CHALLENGE = 'ApiKey realm="bookrec", Bearer'


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey(User.user_id, ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its row: the only moment the secret exists outside the caller."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}", field="scopes"
        )
    return sorted(set(scopes))


def create(
    session: Session,
    name: str,
    scopes: list[str],
    *,
    actor_user_id: int | None,
    origin: Origin | None = None,
) -> IssuedKey:
    """Mint a key with these scopes; the returned secret is never stored nor shown again."""
    scopes = check_scopes(scopes)
    secret = KEY_MARKER + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name.strip(),
        prefix=secret[len(KEY_MARKER) : len(KEY_MARKER) + PREFIX_LENGTH],
        key_hash=hash_key(secret),
        scopes=scopes,
        created_by=actor_user_id,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        "api_key.create",
        origin=origin,
        actor_user_id=actor_user_id,
        target=f"api_key:{key.key_id}",
        details={"name": key.name, "prefix": key.prefix, "scopes": scopes},
    )
    return IssuedKey(key=key, secret=secret)


def page(session: Session, offset: int, limit: int) -> tuple[list[ApiKey], int]:
    """Keys, newest first, and how many there are."""
    return page_of_objects(session, select(ApiKey).order_by(ApiKey.key_id.desc()), offset, limit)


def revoke(
    session: Session, key_id: int, *, actor_user_id: int | None, origin: Origin | None = None
) -> None:
    """Stop a key from working (idempotent: revoking a revoked key keeps the first time)."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("api key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    audit.record(
        session,
        "api_key.revoke",
        origin=origin,
        actor_user_id=actor_user_id,
        target=f"api_key:{key.key_id}",
        details={"name": key.name, "prefix": key.prefix},
    )


@dataclass(frozen=True)
class VerifiedKey:
    key_id: int
    scopes: tuple[str, ...]


class VerifiedKeys:
    """Keys this worker verified lately (by hash), so a busy backend's key is not looked up
    on every request. A revocation reaches other workers within `seconds` (0: no cache)."""

    def __init__(
        self, seconds: float, size: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache: TTLCache[str, VerifiedKey] | None = (
            TTLCache(maxsize=size, ttl=seconds, timer=clock) if seconds > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> VerifiedKey | None:
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key_hash)

    def put(self, key_hash: str, key: VerifiedKey) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache[key_hash] = key

    def clear(self) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache.clear()


def recently_verified(secret: str, scope: str, verified: VerifiedKeys) -> VerifiedKey | None:
    """The key behind `secret` if this worker verified it lately (no I/O); None if it must be
    looked up. Malformed secrets are refused here already, missing scopes too."""
    if not secret.startswith(KEY_MARKER) or len(secret) > 128:
        raise Unauthorized("this API key is not valid", challenge=API_KEY_CHALLENGE)
    found = verified.get(hash_key(secret))
    if found is not None and scope not in found.scopes:
        raise Forbidden(f"this API key lacks the scope {scope!r}")
    return found


def authenticate(
    session: Session, secret: str, scope: str, verified: VerifiedKeys | None = None
) -> VerifiedKey:
    """The live key behind `secret` if it has `scope`: 401 if unknown or revoked, else 403."""
    verified = verified or VerifiedKeys(0)
    found = recently_verified(secret, scope, verified)
    if found is not None:
        return found
    digest = hash_key(secret)
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("this API key is not valid or was revoked", challenge=API_KEY_CHALLENGE)
    now = utcnow()
    # at most one write a minute per key: a busy backend must not turn reads into writes
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        key.last_used_at = now
    found = VerifiedKey(key.key_id, tuple(key.scopes))
    verified.put(digest, found)
    if scope not in found.scopes:
        raise Forbidden(f"this API key lacks the scope {scope!r}")
    return found
