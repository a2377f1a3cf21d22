"""ORM models of readers and their activity.

A reader is everyone whose activity the recommenders learn from. A reader imported from a
data set has `external_id` (the data set's `user_id`) and no account; an account created
through the API gets a reader without an external id (`accounts.models.User.reader_id`).

Times of ratings and shelf entries are Unix seconds (UTC): they arrive that way in data sets,
recommenders compute with them as numbers, and integers keep a six-million-row table small.

Each model names the tables its foreign keys point at by their class (`Book.book_id`), so
importing a model always brings in the models it refers to.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.catalog.models import Book
from bookrec.datasets.models import Dataset
from bookrec.db.base import Base, UTCDateTime, utcnow

#: Activity versions start at a random value below this (and then count up by one).
ACTIVITY_VERSION_START_RANGE = 2**62


def fresh_activity_version() -> int:
    """Where a new reader's activity version starts: a random number, not 0.

    Answers kept for a reader (cached lists, lists precomputed at training) are keyed by
    (reader id, activity version). Should a reader id ever be given out again after an
    erasure, the newcomer's versions start elsewhere and never meet those keys.
    """
    return secrets.randbelow(ACTIVITY_VERSION_START_RANGE)


class Reader(Base):
    __tablename__ = "readers"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused (erasure)

    reader_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey(Dataset.dataset_id, ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Moves (by one) in the same transaction as every change of the reader's ratings or
    #: shelf: equal versions mean equal activity (see `readers.repository.touch`).
    activity_version: Mapped[int] = mapped_column(
        BigInteger, default=fresh_activity_version, server_default="0"
    )


class Rating(Base):
    __tablename__ = "ratings"
    # Clustered on (reader_id, book_id) in SQLite: no separate rowid B-tree to maintain.
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        {"sqlite_with_rowid": False},
    )

    reader_id: Mapped[int] = mapped_column(
        ForeignKey(Reader.reader_id, ondelete="CASCADE"), primary_key=True
    )
    book_id: Mapped[int] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), primary_key=True
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    rated_at: Mapped[int | None] = mapped_column(BigInteger)


class ShelfItem(Base):
    """A book on a reader's to-read shelf (goodbooks' `to_read.csv`)."""

    __tablename__ = "shelf"
    __table_args__ = ({"sqlite_with_rowid": False},)

    reader_id: Mapped[int] = mapped_column(
        ForeignKey(Reader.reader_id, ondelete="CASCADE"), primary_key=True
    )
    book_id: Mapped[int] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[int | None] = mapped_column(BigInteger)


class Event(Base):
    """A view, click or impression, logged for experiments and trending."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("kind IN ('view', 'click', 'impression')", name="event_kind"),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    reader_id: Mapped[int | None] = mapped_column(
        ForeignKey(Reader.reader_id, ondelete="CASCADE"), index=True
    )
    book_id: Mapped[int | None] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[int] = mapped_column(BigInteger, index=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
