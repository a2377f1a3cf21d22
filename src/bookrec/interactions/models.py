"""ORM models of reader activity and of imported data sets.

Times of ratings and shelf entries are Unix seconds (UTC): they arrive that way in data sets,
recommenders compute with them as numbers, and integers keep a six-million-row table small.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.db.base import Base, utcnow


class Dataset(Base):
    """One import: where it came from, when, what it held, and whether it is synthetic."""

    __tablename__ = "datasets"

    dataset_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notes: Mapped[str | None] = mapped_column(Text)


class Rating(Base):
    __tablename__ = "ratings"
    # Clustered on (reader_id, book_id) in SQLite: no separate rowid B-tree to maintain.
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        {"sqlite_with_rowid": False},
    )

    reader_id: Mapped[int] = mapped_column(
        ForeignKey("readers.reader_id", ondelete="CASCADE"), primary_key=True
    )
    book_id: Mapped[int] = mapped_column(
        ForeignKey("books.book_id", ondelete="CASCADE"), primary_key=True
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    rated_at: Mapped[int | None] = mapped_column(BigInteger)


class ShelfItem(Base):
    """A book on a reader's to-read shelf (goodbooks' `to_read.csv`)."""

    __tablename__ = "shelf"
    __table_args__ = ({"sqlite_with_rowid": False},)

    reader_id: Mapped[int] = mapped_column(
        ForeignKey("readers.reader_id", ondelete="CASCADE"), primary_key=True
    )
    book_id: Mapped[int] = mapped_column(
        ForeignKey("books.book_id", ondelete="CASCADE"), primary_key=True
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
        ForeignKey("readers.reader_id", ondelete="CASCADE"), index=True
    )
    book_id: Mapped[int | None] = mapped_column(
        ForeignKey("books.book_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[int] = mapped_column(BigInteger, index=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
