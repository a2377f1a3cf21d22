"""Account rules the edges call: register, log in, refresh, log out, who is calling.

Enumeration: login answers an unknown email and a wrong password with the same status, body
and (by verifying against a dummy hash) similar timing. Register cannot hide that an email is
taken without an email round trip we do not have, so a duplicate gets a plain 409 that says
only that; it costs the same argon2 hash as a success (the password is hashed before the
lookup) and reveals nothing about the account. The API edge rate-limits register per address
and login per address and per account (`bookrec.api.ratelimit`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookrec.accounts import api_keys, audit, passwords, repository, tokens
from bookrec.accounts.audit import Origin
from bookrec.accounts.models import User
from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from bookrec.readers.models import Reader

ROLES = ("reader", "admin")
LOGIN_FAILED = "email or password is wrong"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


@dataclass(frozen=True)
class Authenticator:
    """What authentication needs, built once per process from the settings."""

    tokens: tokens.TokenConfig
    hasher: PasswordHasher
    #: Verified against when the email is unknown, so that case costs what a real check costs.
    dummy_hash: str
    #: API keys this worker verified lately.
    verified_keys: api_keys.VerifiedKeys

    @classmethod
    def of(cls, settings: Settings) -> Authenticator:
        hasher = passwords.make_hasher(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        return cls(
            tokens=tokens.TokenConfig.of(settings),
            hasher=hasher,
            dummy_hash=passwords.hash_password(hasher, secrets.token_urlsafe(24)),
            verified_keys=api_keys.VerifiedKeys(settings.api_key_cache_seconds),
        )


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class Authenticated:
    user: User
    claims: tokens.AccessClaims


def email_key(email: str) -> str:
    """A fixed-length stand-in for an email address (normalised first): what rate-limit
    buckets and device cookies name instead of the address itself."""
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()[:32]


def normalise_email(email: str) -> str:
    """Lower-case and trimmed: one account per address however it is typed."""
    return email.strip().lower()


def check_email(email: str) -> str:
    normalised = normalise_email(email)
    if len(normalised) > 254 or not _EMAIL.match(normalised):
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return normalised


def register(
    session: Session,
    auth: Authenticator,
    email: str,
    password: str,
    *,
    role: str = "reader",
    origin: Origin | None = None,
    actor_user_id: int | None = None,
) -> User:
    """Create an account and its reader; refuses a bad email, a weak password, a taken email."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    email = check_email(email)
    passwords.check_password_policy(password, email)
    password_hash = passwords.hash_password(auth.hasher, password)
    taken = Conflict("an account with this email address already exists", field="email")
    if repository.user_by_email(session, email) is not None:
        raise taken
    reader = Reader()
    session.add(reader)
    session.flush()
    user = User(email=email, password_hash=password_hash, role=role, reader_id=reader.reader_id)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration won; the unit of work rolls back
        raise taken from exc
    audit.record(
        session,
        "user.register" if role == "reader" else "user.create_admin",
        origin=origin,
        actor_user_id=actor_user_id if actor_user_id is not None else user.user_id,
        target=f"user:{user.user_id}",
        details={"role": role},
    )
    return user


def login(
    session: Session, auth: Authenticator, email: str, password: str, origin: Origin | None = None
) -> IssuedTokens:
    """Trade email and password for tokens; every failure looks the same from outside."""
    normalised = normalise_email(email)
    user = repository.user_by_email(session, normalised)
    check = passwords.verify_password(
        auth.hasher, user.password_hash if user is not None else auth.dummy_hash, password
    )
    if user is None or not check.ok or user.disabled:
        reason = "unknown email" if user is None else "disabled" if check.ok else "wrong password"
        audit.record(
            session,
            "auth.login_failed",
            origin=origin,
            actor_user_id=None if user is None else user.user_id,
            target=normalised,
            details={"reason": reason},
        )
        raise Unauthorized(LOGIN_FAILED, keep_changes=True)
    if check.new_hash is not None:
        user.password_hash = check.new_hash
    now = utcnow()
    family_id = tokens.new_family()
    refresh_token = tokens.issue_refresh_token(session, auth.tokens, user.user_id, family_id, now)
    audit.record(
        session,
        "auth.login",
        origin=origin,
        actor_user_id=user.user_id,
        target=f"user:{user.user_id}",
        details={"session": family_id},
    )
    return _issue(auth, user, family_id, refresh_token, now)


def refresh(
    session: Session, auth: Authenticator, refresh_token: str, origin: Origin | None = None
) -> IssuedTokens:
    """Rotate a refresh token; a reused one revokes its family (and that sticks)."""
    now = utcnow()
    try:
        rotation = tokens.rotate_refresh_token(session, auth.tokens, refresh_token, now)
    except tokens.RefreshTokenReused as exc:
        audit.record(
            session,
            "auth.refresh_reuse",
            origin=origin,
            actor_user_id=exc.user_id,
            target=f"user:{exc.user_id}",
            details={"session": exc.family_id, "action": "family revoked"},
        )
        raise
    user = repository.user_by_id(session, rotation.user_id)
    if user is None or user.disabled:
        tokens.revoke_family(session, rotation.family_id, now)
        raise Unauthorized("this account cannot log in", keep_changes=True)
    return _issue(auth, user, rotation.family_id, rotation.refresh_token, now)


def confirm_password(
    session: Session, auth: Authenticator, user: User, password: str, origin: Origin | None = None
) -> None:
    """Refuse (403, audited) unless `password` is the account's: asked again before an
    operation that cannot be undone, so a stolen access token alone cannot do it."""
    if passwords.verify_password(auth.hasher, user.password_hash, password).ok:
        return
    audit.record(
        session,
        "auth.confirm_failed",
        origin=origin,
        actor_user_id=user.user_id,
        target=f"user:{user.user_id}",
    )
    raise Forbidden(
        "the password is not right: this needs your password", keep_changes=True, field="password"
    )


def logout(session: Session, caller: Authenticated, origin: Origin | None = None) -> None:
    """End the caller's login: its refresh tokens and access tokens stop working."""
    tokens.revoke_family(session, caller.claims.session_id, utcnow())
    audit.record(
        session,
        "auth.logout",
        origin=origin,
        actor_user_id=caller.user.user_id,
        target=f"user:{caller.user.user_id}",
        details={"session": caller.claims.session_id},
    )


def current_user(session: Session, auth: Authenticator, access_token: str) -> Authenticated:
    """The account an access token speaks for, if the token, account and login still hold."""
    claims = tokens.decode_access_token(auth.tokens, access_token)
    user = repository.user_by_id(session, claims.user_id)
    if user is None or user.disabled:
        raise Unauthorized("this account cannot log in", challenge='Bearer error="invalid_token"')
    if not tokens.family_is_active(session, claims.session_id, user.user_id):
        raise Unauthorized(
            "this login has ended (logged out or revoked): log in again",
            challenge='Bearer error="invalid_token"',
        )
    return Authenticated(user=user, claims=claims)


def browser_session(
    session: Session, auth: Authenticator, access_token: str
) -> tuple[Authenticated, str | None]:
    """The account a browser's session cookie (an access token) speaks for, and a renewed
    access token when the cookie's has expired.

    The web app keeps the login's access token in an HttpOnly cookie and never hands out its
    refresh token: an expired access token is renewed for the same login (same `sid`) while
    that login is live, i.e. not logged out or revoked and within its refresh token's
    lifetime. Nothing rotates, so two tabs renewing at once cannot end each other's login.
    """
    claims = tokens.decode_access_token(auth.tokens, access_token, allow_expired=True)
    now = utcnow()
    user = repository.user_by_id(session, claims.user_id)
    if user is None or user.disabled:
        raise Unauthorized("this account cannot log in")
    if not tokens.family_is_live(session, claims.session_id, user.user_id, now):
        raise Unauthorized("this login has ended (logged out, revoked or expired): log in again")
    if claims.expires_at > now:
        return Authenticated(user=user, claims=claims), None
    renewed = tokens.issue_access_token(
        auth.tokens, user.user_id, user.role, claims.session_id, now
    )
    return Authenticated(
        user=user, claims=tokens.decode_access_token(auth.tokens, renewed)
    ), renewed


def _issue(
    auth: Authenticator, user: User, family_id: str, refresh_token: str, now: datetime
) -> IssuedTokens:
    access_token = tokens.issue_access_token(auth.tokens, user.user_id, user.role, family_id, now)
    return IssuedTokens(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(auth.tokens.access_ttl.total_seconds()),
    )
