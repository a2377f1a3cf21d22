"""GDPR for an account: everything it holds, exported; and erasure, in one unit of work.

Erasure deletes the account, its refresh tokens and its reader row; the reader's ratings,
shelf and events go with it by `ON DELETE CASCADE` (SQLite with `foreign_keys=ON`, which
every bookrec engine sets; PostgreSQL too when the bulk import re-attached the ratings and
shelf keys `NOT VALID`: that skips checking old rows, the cascade action stays). The audit
log keeps its security record, minus the email address (failed logins name the address that
was typed), and gains one "account erased" event that names no email or IP.

What serving holds of the reader (docs/security.md lists it): lists scored after the erasure
read the database and so cannot use the erased rows; cached lists and the list precomputed at
training are keyed by the reader's id and activity version, which no request can name once
the rows are gone; cached ones expire within `BOOKREC_CACHE_TTL_SECONDS`, the precomputed one
goes with the next training. Model arrays are item-side only; the erased ratings stay blended
into them until the next training, which no longer sees them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from bookrec.accounts import audit
from bookrec.accounts.audit import AuditEvent, Origin
from bookrec.accounts.models import RefreshToken, User
from bookrec.accounts.schemas import (
    AccountExport,
    AccountInfo,
    AuditEventExport,
    EventExport,
    RatingExport,
    SessionExport,
    ShelfExport,
)
from bookrec.catalog.models import Book
from bookrec.db.base import utcnow
from bookrec.readers.models import Event, Rating, Reader, ShelfItem

ERASED_ACTION = "account.erase"


def _about(user: User) -> ColumnElement[bool]:
    """Audit events this account did, or that name it (by id or by the email typed)."""
    return or_(
        AuditEvent.actor_user_id == user.user_id,
        AuditEvent.target == f"user:{user.user_id}",
        AuditEvent.target == user.email,
    )


def export(session: Session, user: User) -> AccountExport:
    """All data bookrec holds about an account and its reader, as one document."""
    reader = session.get(Reader, user.reader_id)
    ratings = session.execute(
        select(Rating.book_id, Book.title, Rating.rating, Rating.rated_at)
        .join(Book, Book.book_id == Rating.book_id)
        .where(Rating.reader_id == user.reader_id)
        .order_by(Rating.book_id)
    ).all()
    shelf = session.execute(
        select(ShelfItem.book_id, Book.title, ShelfItem.added_at)
        .join(Book, Book.book_id == ShelfItem.book_id)
        .where(ShelfItem.reader_id == user.reader_id)
        .order_by(ShelfItem.book_id)
    ).all()
    events = session.scalars(
        select(Event).where(Event.reader_id == user.reader_id).order_by(Event.event_id)
    ).all()
    sessions = session.scalars(
        select(RefreshToken)
        .where(RefreshToken.user_id == user.user_id)
        .order_by(RefreshToken.token_id)
    ).all()
    audit_events = session.scalars(
        select(AuditEvent).where(_about(user)).order_by(AuditEvent.event_id)
    ).all()
    return AccountExport(
        exported_at=utcnow(),
        account=AccountInfo(
            user_id=user.user_id,
            email=user.email,
            role="admin" if user.role == "admin" else "reader",
            reader_id=user.reader_id,
            reader_external_id=None if reader is None else reader.external_id,
            created_at=user.created_at,
            disabled=user.disabled,
        ),
        ratings=[
            RatingExport(book_id=r.book_id, title=r.title, rating=r.rating, rated_at=r.rated_at)
            for r in ratings
        ],
        shelf=[ShelfExport(book_id=s.book_id, title=s.title, added_at=s.added_at) for s in shelf],
        events=[
            EventExport(
                event_id=e.event_id,
                kind=e.kind,
                book_id=e.book_id,
                occurred_at=e.occurred_at,
                context=e.context,
            )
            for e in events
        ],
        sessions=[
            SessionExport(
                session_id=t.family_id,
                issued_at=t.created_at,
                expires_at=t.expires_at,
                used_at=t.used_at,
                revoked_at=t.revoked_at,
            )
            for t in sessions
        ],
        audit_events=[
            AuditEventExport(
                occurred_at=a.occurred_at,
                action=a.action,
                target=a.target,
                ip=a.ip,
                request_id=a.request_id,
                details=a.details or {},
            )
            for a in audit_events
        ],
    )


def _count(session: Session, column: Any, value: int) -> int:
    return int(session.scalar(select(func.count()).where(column == value)) or 0)


def erase(session: Session, user: User, origin: Origin | None = None) -> dict[str, int]:
    """Delete the account, its reader and all their activity; returns what went, by kind.

    Runs in the caller's unit of work: either all of it happens or none of it does.
    """
    user_id, reader_id, email = user.user_id, user.reader_id, user.email
    erased = {
        "ratings": _count(session, Rating.reader_id, reader_id),
        "shelf": _count(session, ShelfItem.reader_id, reader_id),
        "events": _count(session, Event.reader_id, reader_id),
        "refresh_tokens": _count(session, RefreshToken.user_id, user_id),
    }
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.target == email)
        .values(target=f"user:{user_id}")
        .execution_options(synchronize_session=False)
    )
    if user in session:
        session.expunge(user)
    for statement in (
        delete(RefreshToken).where(RefreshToken.user_id == user_id),
        delete(User).where(User.user_id == user_id),
        # ratings, shelf and events follow by ON DELETE CASCADE
        delete(Reader).where(Reader.reader_id == reader_id),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    audit.record(
        session,
        ERASED_ACTION,
        origin=Origin(request_id=None if origin is None else origin.request_id),
        target=f"user:{user_id}",
        details=dict(erased),
    )
    session.flush()
    return erased
