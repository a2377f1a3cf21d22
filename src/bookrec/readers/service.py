"""Rules of a reader's own activity: rating books, the to-read shelf, and logged events.

Every function works in the caller's unit of work and commits nothing: a request that fails
halfway leaves no rating, shelf entry or event behind.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookrec.catalog.models import Book
from bookrec.catalog.service import books_by_id
from bookrec.config import Settings
from bookrec.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from bookrec.readers import repository
from bookrec.readers.models import Rating, ShelfItem
from bookrec.readers.schemas import EventIn, RatingOut, ShelfItemOut

#: Events older than this are refused: late batches would skew trending and experiments.
EVENT_MAX_AGE_SECONDS = 7 * 24 * 3600
#: Events stamped further ahead than this are refused (client clocks drift a little).
EVENT_MAX_AHEAD_SECONDS = 5 * 60
#: Attempts to write a rating while another request deletes it at the same moment.
_RATING_ATTEMPTS = 3


def _now() -> int:
    return int(time.time())


def _book(session: Session, book_id: int) -> Book:
    book = session.get(Book, book_id)
    if book is None or book.deleted_at is not None:
        raise NotFound("book", book_id)
    return book


def rate_book(session: Session, reader_id: int, book_id: int, stars: int) -> tuple[RatingOut, bool]:
    """Create or replace the reader's rating of a book, stamped now; True when created.

    Insert-or-nothing, then update: concurrent identical requests neither fail on the primary
    key nor both claim to have created the rating.
    """
    book = _book(session, book_id)
    rated_at = _now()
    connection = session.connection()
    for _ in range(_RATING_ATTEMPTS):
        created = repository.insert_rating(connection, reader_id, book_id, stars, rated_at)
        if created or repository.update_rating(connection, reader_id, book_id, stars, rated_at):
            rating = RatingOut(
                book_id=book.book_id,
                title=book.title,
                authors=book.authors,
                rating=stars,
                rated_at=rated_at,
            )
            return rating, created
    raise Conflict(f"the rating of book {book_id} kept changing concurrently; try again")


def unrate_book(session: Session, reader_id: int, book_id: int) -> None:
    """Remove the reader's rating of a book, if there is one."""
    repository.delete_rating(session.connection(), reader_id, book_id)


def list_ratings(
    session: Session, reader_id: int, offset: int, limit: int
) -> tuple[list[RatingOut], int]:
    """A page of the reader's ratings, newest first, and how many there are in all."""
    rows, total = repository.ratings_page(session.connection(), reader_id, offset, limit)
    return [RatingOut.model_validate(row) for row in rows], total


def shelve_book(session: Session, reader_id: int, book_id: int) -> tuple[ShelfItemOut, bool]:
    """Put a book on the reader's to-read shelf; True when added, False when already there."""
    book = _book(session, book_id)
    connection = session.connection()
    now = _now()
    created = repository.insert_shelf_item(connection, reader_id, book_id, now)
    added_at = now if created else repository.shelf_added_at(connection, reader_id, book_id)
    item = ShelfItemOut(
        book_id=book.book_id, title=book.title, authors=book.authors, added_at=added_at
    )
    return item, created


def unshelve_book(session: Session, reader_id: int, book_id: int) -> None:
    """Take a book off the reader's to-read shelf, if it is there."""
    repository.delete_shelf_item(session.connection(), reader_id, book_id)


@dataclass(frozen=True)
class BookActivity:
    """What one reader did with one book: their stars (if rated) and whether it is shelved."""

    rating: int | None
    shelved: bool


def book_activity(session: Session, reader_id: int, book_id: int) -> BookActivity:
    """The reader's rating of a book and whether it is on their to-read shelf (a book page)."""
    rating = session.scalar(
        select(Rating.rating).where(Rating.reader_id == reader_id, Rating.book_id == book_id)
    )
    shelved = session.scalar(
        select(ShelfItem.book_id).where(
            ShelfItem.reader_id == reader_id, ShelfItem.book_id == book_id
        )
    )
    return BookActivity(rating=None if rating is None else int(rating), shelved=shelved is not None)


def list_shelf(
    session: Session, reader_id: int, offset: int, limit: int
) -> tuple[list[ShelfItemOut], int]:
    """A page of the reader's to-read shelf, newest first, and how many books are on it."""
    rows, total = repository.shelf_page(session.connection(), reader_id, offset, limit)
    return [ShelfItemOut.model_validate(row) for row in rows], total


def _event_error(
    index: int, event: EventIn, occurred_at: int, known: set[int], now: int
) -> dict[str, str] | None:
    """What is wrong with one event of a batch, as a problem+json error entry, or None."""
    if occurred_at < now - EVENT_MAX_AGE_SECONDS:
        days = EVENT_MAX_AGE_SECONDS // 86400
        message = f"is more than {days} days ago; such events are no longer accepted"
        return {"field": f"events[{index}].occurred_at", "message": message}
    if occurred_at > now + EVENT_MAX_AHEAD_SECONDS:
        minutes = EVENT_MAX_AHEAD_SECONDS // 60
        message = f"is more than {minutes} minutes in the future; check the client's clock"
        return {"field": f"events[{index}].occurred_at", "message": message}
    if event.book_id not in known:
        message = f"book {event.book_id} does not exist"
        return {"field": f"events[{index}].book_id", "message": message}
    return None


@dataclass(frozen=True)
class EventLimits:
    """How many events a reader may hold and how long any is kept."""

    quota: int
    retention_days: int

    @classmethod
    def of(cls, settings: Settings) -> EventLimits:
        return cls(settings.event_quota_per_reader, settings.event_retention_days)

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86400


def event_readers(
    session: Session, events: Sequence[EventIn], own_reader_id: int | None
) -> list[int]:
    """The reader each event is about: the caller's own (`own_reader_id`, a bearer token's
    reader), or the reader of its `user_id` (an app's API key). Errors name each event."""
    errors: list[dict[str, str]] = []
    if own_reader_id is not None:
        errors = [
            {
                "field": f"events[{index}].user_id",
                "message": "is for an app's API key; with a bearer token events are your own",
            }
            for index, event in enumerate(events)
            if event.user_id is not None
        ]
        found = [own_reader_id] * len(events)
    else:
        mapping = repository.reader_ids_by_external(
            session.connection(), [e.user_id for e in events if e.user_id is not None]
        )
        found = []
        for index, event in enumerate(events):
            field = f"events[{index}].user_id"
            if event.user_id is None:
                message = "is required with an API key: the data set user id the event is about"
                errors.append({"field": field, "message": message})
            elif event.user_id not in mapping:
                errors.append({"field": field, "message": f"user {event.user_id} does not exist"})
            found.append(mapping.get(event.user_id or 0, -1))
    if errors:
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )
    return found


def record_events(
    session: Session, reader_ids: Sequence[int], events: Sequence[EventIn], limits: EventLimits
) -> list[int]:
    """Record a batch of events, each about its reader in `reader_ids`, all or none; returns
    the time (Unix seconds) each was recorded at.

    Refuses the whole batch when any event names an unknown book or falls outside the accepted
    time window, naming each offender by its index (`events[3].book_id`), and (429) when it
    would take a reader past `limits.quota` events once those past the retention are gone.
    """
    now = _now()
    known = set(books_by_id(session, list({event.book_id for event in events})))
    times = [now if event.occurred_at is None else event.occurred_at for event in events]
    errors = [
        error
        for index, (event, occurred_at) in enumerate(zip(events, times, strict=True))
        if (error := _event_error(index, event, occurred_at, known, now)) is not None
    ]
    if errors:
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )
    rows: list[dict[str, Any]] = [
        {
            "reader_id": reader_id,
            "book_id": event.book_id,
            "kind": event.kind,
            "occurred_at": occurred_at,
            "context": event.context,
        }
        for reader_id, event, occurred_at in zip(reader_ids, events, times, strict=True)
    ]
    connection = session.connection()
    for reader_id, adding in Counter(reader_ids).items():
        held = repository.count_events(connection, reader_id)
        if held + adding > limits.quota:  # make room first: what outlived the retention goes
            repository.delete_events_before(connection, now - limits.retention_seconds, reader_id)
            held = repository.count_events(connection, reader_id)
        if held + adding > limits.quota:
            raise TooManyRequests(
                f"event quota reached: a reader keeps at most {limits.quota:,} events (this "
                f"one holds {held:,}); events older than {limits.retention_days} days are "
                "deleted",
                retry_after=86400,
            )
    repository.insert_events(connection, rows)
    return times


def prune_events(session: Session, limits: EventLimits) -> int:
    """Delete every event older than the retention; returns how many went."""
    return repository.delete_events_before(session.connection(), _now() - limits.retention_seconds)
