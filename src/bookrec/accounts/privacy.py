"""GDPR for an account: everything it holds, exported; and erasure, in one unit of work.

Erasure deletes the account, its refresh tokens and its reader row; the reader's ratings,
shelf and events go with it by `ON DELETE CASCADE` (SQLite with `foreign_keys=ON`, which
every bookrec engine sets; PostgreSQL too when the bulk import re-attached the ratings and
shelf keys `NOT VALID`: that skips checking old rows, the cascade action stays). The audit
log keeps its security record anonymised: every row the account did or that names it loses
the account's id, the email typed, the IP address, the request id and its details (session
ids); only what happened and when stay. One "account erased" event is added that names no
one. Ids are never reused (SQLite AUTOINCREMENT, PostgreSQL sequences), and an export only
covers rows from the account's own lifetime, so nothing of an erased account can surface in
a newcomer's export.

What serving holds of the reader (docs/security.md lists it): lists scored after the erasure
read the database and so cannot use the erased rows; cached lists and the list precomputed at
training are keyed by the reader's id and activity version, which no request can name once
the rows are gone; cached ones expire within `BOOKREC_CACHE_TTL_SECONDS`, the precomputed one
goes with the next training. Model arrays are item-side only; the erased ratings stay blended
into them until the next training, which no longer sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from bookrec.accounts import audit
from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import RefreshToken, User
from bookrec.accounts.schemas import (
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


ERASED_TARGET = "user:erased"


def _names(user: User) -> ColumnElement[bool]:
    """Audit events that name the account as their target (by id or by the email typed)."""
    return or_(AuditEvent.target == f"user:{user.user_id}", AuditEvent.target == user.email)


def _about(user: User) -> ColumnElement[bool]:
    """Audit events this account did, or that name it, since the account was created."""
    return and_(
        or_(AuditEvent.actor_user_id == user.user_id, _names(user)),
        AuditEvent.occurred_at >= user.created_at,
    )


#: Rows fetched from the database at a time while an export streams.
EXPORT_BATCH = 1000


#: One list of an export: its name, the rows' query, and each row's shape.
Section = tuple[str, Any, Callable[[Any], BaseModel]]


def export(session: Session, user: User, more: Sequence[Section] = ()) -> Iterator[bytes]:
    """All data bookrec holds about an account and its reader, as one JSON document
    (`AccountExport`'s shape) produced piece by piece: rows are read in batches and sent
    as they come, so an export of any size holds only one batch in memory. `more` adds the
    sections of the layers above this one (what experiments showed the reader)."""
    reader = session.get(Reader, user.reader_id)
    account = AccountInfo(
        user_id=user.user_id,
        email=user.email,
        role="admin" if user.role == "admin" else "reader",
        reader_id=user.reader_id,
        reader_external_id=None if reader is None else reader.external_id,
        created_at=user.created_at,
        disabled=user.disabled,
    )
    yield b'{"exported_at":' + _json(utcnow()) + b',"account":' + account.model_dump_json().encode()
    sections: list[Section] = [
        (
            "ratings",
            select(Rating.book_id, Book.title, Rating.rating, Rating.rated_at)
            .join(Book, Book.book_id == Rating.book_id)
            .where(Rating.reader_id == user.reader_id)
            .order_by(Rating.book_id),
            lambda r: RatingExport(
                book_id=r.book_id, title=r.title, rating=r.rating, rated_at=r.rated_at
            ),
        ),
        (
            "shelf",
            select(ShelfItem.book_id, Book.title, ShelfItem.added_at)
            .join(Book, Book.book_id == ShelfItem.book_id)
            .where(ShelfItem.reader_id == user.reader_id)
            .order_by(ShelfItem.book_id),
            lambda r: ShelfExport(book_id=r.book_id, title=r.title, added_at=r.added_at),
        ),
        (
            "events",
            select(Event.event_id, Event.kind, Event.book_id, Event.occurred_at, Event.context)
            .where(Event.reader_id == user.reader_id)
            .order_by(Event.event_id),
            lambda e: EventExport(
                event_id=e.event_id,
                kind=e.kind,
                book_id=e.book_id,
                occurred_at=e.occurred_at,
                context=e.context,
            ),
        ),
        (
            "sessions",
            select(
                RefreshToken.family_id,
                RefreshToken.created_at,
                RefreshToken.expires_at,
                RefreshToken.used_at,
                RefreshToken.revoked_at,
            )
            .where(RefreshToken.user_id == user.user_id)
            .order_by(RefreshToken.token_id),
            lambda t: SessionExport(
                session_id=t.family_id,
                issued_at=t.created_at,
                expires_at=t.expires_at,
                used_at=t.used_at,
                revoked_at=t.revoked_at,
            ),
        ),
        (
            "audit_events",
            select(
                AuditEvent.occurred_at,
                AuditEvent.action,
                AuditEvent.target,
                AuditEvent.ip,
                AuditEvent.request_id,
                AuditEvent.details,
            )
            .where(_about(user))
            .order_by(AuditEvent.event_id),
            lambda a: AuditEventExport(
                occurred_at=a.occurred_at,
                action=a.action,
                target=a.target,
                ip=a.ip,
                request_id=a.request_id,
                details=a.details or {},
            ),
        ),
    ]
    for name, statement, shape in [*sections, *more]:
        yield f',"{name}":['.encode()
        rows = session.execute(statement.execution_options(yield_per=EXPORT_BATCH))
        for index, row in enumerate(rows):
            yield (b"," if index else b"") + shape(row).model_dump_json().encode()
        yield b"]"
    yield b"}"


def _json(value: Any) -> bytes:
    return TypeAdapter(type(value)).dump_json(value)


def _count(session: Session, column: Any, value: int) -> int:
    return int(session.scalar(select(func.count()).where(column == value)) or 0)


def erase(session: Session, user: User) -> dict[str, int]:
    """Delete the account, its reader and all their activity; returns what went, by kind.

    Runs in the caller's unit of work: either all of it happens or none of it does.
    """
    user_id, reader_id = user.user_id, user.reader_id
    erased = {
        "ratings": _count(session, Rating.reader_id, reader_id),
        "shelf": _count(session, ShelfItem.reader_id, reader_id),
        "events": _count(session, Event.reader_id, reader_id),
        "refresh_tokens": _count(session, RefreshToken.user_id, user_id),
    }
    anonymous = {"ip": None, "request_id": None}
    session.execute(  # rows about the account: what happened and when, nothing more
        update(AuditEvent)
        .where(_names(user))
        .values(target=ERASED_TARGET, actor_user_id=None, details={}, **anonymous)
        .execution_options(synchronize_session=False)
    )
    session.execute(  # what the account did to other things: those stay, the who goes
        update(AuditEvent)
        .where(AuditEvent.actor_user_id == user_id)
        .values(actor_user_id=None, **anonymous)
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
    audit.record(session, ERASED_ACTION, target=ERASED_TARGET, details=dict(erased))
    session.flush()
    return erased
