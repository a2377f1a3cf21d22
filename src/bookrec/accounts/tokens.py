"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored hashed, rotated).

A login starts a *family* of refresh tokens; each use of a refresh token marks it used and
issues the next one in the same family. Presenting a used or revoked refresh token means it
was copied, so the whole family is revoked: the thief and the owner both have to log in again.
Access tokens carry the family as `sid`, so ending a family also ends its access tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from bookrec.accounts.models import RefreshToken
from bookrec.config import Settings
from bookrec.errors import Unauthorized

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti", "sub", "role", "sid"]
MAX_USER_ID = 2**31 - 1  # ids are 32-bit integers: a larger `sub` names no account
#: How long a device that logged in stays recognised for its account (see `issue_device_token`).
DEVICE_TTL = timedelta(days=365)


@dataclass(frozen=True)
class TokenConfig:
    secret_key: str
    issuer: str
    audience: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    @classmethod
    def of(cls, settings: Settings) -> TokenConfig:
        return cls(
            secret_key=settings.secret_key.get_secret_value(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(minutes=settings.access_token_minutes),
            refresh_ttl=timedelta(days=settings.refresh_token_days),
        )


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    session_id: str
    token_id: str
    expires_at: datetime


def issue_access_token(
    config: TokenConfig, user_id: int, role: str, session_id: str, now: datetime
) -> str:
    claims = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": str(user_id),
        "role": role,
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + config.access_ttl,
    }
    return jwt.encode(claims, config.secret_key, algorithm=ALGORITHM)


def decode_access_token(
    config: TokenConfig, token: str, *, allow_expired: bool = False
) -> AccessClaims:
    """Verify signature (HS256 only), issuer, audience and expiry; any failure is a 401.

    `allow_expired` skips only the expiry check: a browser session renews its access token
    while its login lasts (`service.browser_session`)."""
    try:
        claims = jwt.decode(
            token,
            config.secret_key,
            algorithms=[ALGORITHM],
            audience=config.audience,
            issuer=config.issuer,
            options={"require": REQUIRED_CLAIMS, "verify_exp": not allow_expired},
        )
        user_id = int(claims["sub"])
        if not 1 <= user_id <= MAX_USER_ID:
            raise ValueError("sub out of range")
        return AccessClaims(
            user_id=user_id,
            role=str(claims["role"]),
            session_id=str(claims["sid"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise _invalid("the access token has expired: refresh it or log in again") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise _invalid("the access token is not valid") from exc


def issue_device_token(config: TokenConfig, account_key: str, now: datetime) -> str:
    """A signed note that this device logged in to the account (`service.email_key`).

    Sent back as a cookie, it lets the device past the per-account limit on failed logins
    that strangers' wrong passwords use up, so nobody can lock the owner out.
    """
    claims = {
        "iss": config.issuer,
        "aud": f"{config.audience}:device",
        "sub": account_key,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + DEVICE_TTL,
    }
    return jwt.encode(claims, config.secret_key, algorithm=ALGORITHM)


def device_knows(config: TokenConfig, token: str | None, account_key: str) -> bool:
    """Whether `token` is a valid device note for the account (`service.email_key`)."""
    if not token or len(token) > 1024:
        return False
    try:
        claims = jwt.decode(
            token,
            config.secret_key,
            algorithms=[ALGORITHM],
            audience=f"{config.audience}:device",
            issuer=config.issuer,
            options={"require": ["iss", "aud", "exp", "sub"]},
        )
    except jwt.InvalidTokenError:
        return False
    return hmac.compare_digest(str(claims["sub"]), account_key)


def hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue_refresh_token(
    session: Session, config: TokenConfig, user_id: int, family_id: str, now: datetime
) -> str:
    """Store a new refresh token of `family_id` (its hash only) and return the token itself."""
    raw = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_refresh_token(raw),
            created_at=now,
            expires_at=now + config.refresh_ttl,
        )
    )
    session.flush()
    return raw


def new_family() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Rotation:
    user_id: int
    family_id: str
    refresh_token: str


class RefreshTokenReused(Unauthorized):
    """A used or revoked refresh token came back: its family is now revoked (and stays so)."""

    def __init__(self, user_id: int, family_id: str) -> None:
        super().__init__(
            "this refresh token was already used; every session of that login has been ended, "
            "log in again",
            keep_changes=True,
        )
        self.user_id = user_id
        self.family_id = family_id


def rotate_refresh_token(
    session: Session, config: TokenConfig, raw: str, now: datetime
) -> Rotation:
    """Spend a refresh token and issue its successor; reuse revokes the family."""
    token = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(raw))
    ).one_or_none()
    if token is None:
        raise _invalid("the refresh token is not valid")
    if token.used_at is not None:
        revoke_family(session, token.family_id, now)
        raise RefreshTokenReused(token.user_id, token.family_id)
    if token.revoked_at is not None:  # revocation covers the whole family already
        raise _invalid("this login has ended (logged out or revoked): log in again")
    if token.expires_at <= now:
        raise _invalid("the refresh token has expired: log in again")
    # The guarded UPDATE makes spending atomic: of two concurrent uses, one wins.
    spent = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_id == token.token_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, token.family_id, now)
        raise RefreshTokenReused(token.user_id, token.family_id)
    successor = issue_refresh_token(session, config, token.user_id, token.family_id, now)
    return Rotation(user_id=token.user_id, family_id=token.family_id, refresh_token=successor)


def revoke_family(session: Session, family_id: str, now: datetime) -> int:
    """Revoke every token of a family not yet revoked; returns how many."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return int(result.rowcount)  # type: ignore[attr-defined]


def family_is_active(session: Session, family_id: str, user_id: int) -> bool:
    """True while the login that `family_id` names has not been revoked."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    RefreshToken.family_id == family_id,
                    RefreshToken.user_id == user_id,
                    RefreshToken.revoked_at.is_(None),
                )
            )
        )
    )


def family_is_live(session: Session, family_id: str, user_id: int, now: datetime) -> bool:
    """True while the login `family_id` names is neither revoked nor past its refresh
    token's expiry: how long a browser session may renew its access token."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    RefreshToken.family_id == family_id,
                    RefreshToken.user_id == user_id,
                    RefreshToken.revoked_at.is_(None),
                    RefreshToken.expires_at > now,
                )
            )
        )
    )


def _invalid(detail: str) -> Unauthorized:
    return Unauthorized(detail, challenge='Bearer error="invalid_token"')
