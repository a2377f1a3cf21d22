"""What a recommended book looks like, held in memory so lists are described without SQL.

The catalogue is small (goodbooks: 10,000 books, ~2 MB of text), so every worker keeps each
book's title, authors and cover. The refresher reloads it when the `books` table changes
(its row count or newest `updated_at` moved), checked with one aggregate query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, func, select

from bookrec.catalog.models import Book
from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.serving.schemas import RecommendedBook


@dataclass(frozen=True, slots=True)
class BookCard:
    book_id: int
    title: str
    authors: str
    image_url: str | None
    #: the card as a list item's JSON, cut where the score goes (see `item_json`)
    json_around_score: tuple[bytes, bytes] = (b"", b"")

    @classmethod
    def of(cls, book_id: int, title: str, authors: str, image_url: str | None) -> BookCard:
        item = RecommendedBook(
            book_id=book_id, title=title, authors=authors, score=0.0, image_url=image_url
        )
        # a quote inside a JSON string is escaped, so the marker can only be the score field
        head, marker, tail = item.model_dump_json().encode().partition(b',"score":0.0,')
        if not marker:
            raise AssertionError(f"no score in {item.model_dump_json()}")
        return cls(book_id, title, authors, image_url, (head + b',"score":', b"," + tail))

    def item_json(self, score: float) -> bytes:
        """`RecommendedBook(..., score=round(score, 6)).model_dump_json()` without the model:
        an unexplained list item is two stored pieces and a number."""
        head, tail = self.json_around_score
        return head + to_json(round(score, 6)) + tail


@dataclass(frozen=True)
class BookCards:
    cards: dict[int, BookCard]
    stamp: tuple[Any, ...]

    @classmethod
    def empty(cls) -> BookCards:
        return cls({}, ())

    @staticmethod
    def stamp_of(connection: Connection) -> tuple[Any, ...]:
        """Changes whenever a book is added, edited or deleted."""
        row = connection.execute(select(func.count(), func.max(Book.updated_at))).one()
        return (int(row[0]), str(row[1]))

    @classmethod
    def load(cls, connection: Connection) -> BookCards:
        stamp = cls.stamp_of(connection)
        rows = connection.execute(
            select(Book.book_id, Book.title, Book.authors, Book.image_url).where(
                Book.deleted_at.is_(None)
            )
        )
        cards = {
            int(row.book_id): BookCard.of(
                int(row.book_id), row.title, row.authors or "", row.image_url
            )
            for row in rows
        }
        return cls(cards, stamp)

    def get(self, book_id: int) -> BookCard | None:
        return self.cards.get(book_id)

    def __len__(self) -> int:
        return len(self.cards)


class CardStore:
    """The book cards of this worker, reloaded when the catalogue changes."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.cards = BookCards.empty()

    def refresh(self) -> None:
        with unit_of_work(self.sessions) as session:
            connection = session.connection()
            if self.cards.stamp and BookCards.stamp_of(connection) == self.cards.stamp:
                return
            self.cards = BookCards.load(connection)
