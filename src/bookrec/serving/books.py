"""What a recommended book looks like, held in memory so lists are described without SQL.

The catalogue is small (goodbooks: 10,000 books, ~2 MB of text), so every worker keeps each
book's title, authors and cover. The refresher reloads it when the `books` table changes
(its row count or newest `updated_at` moved), checked with one aggregate query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from bookrec.catalog.models import Book


@dataclass(frozen=True, slots=True)
class BookCard:
    book_id: int
    title: str
    authors: str
    image_url: str | None


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
        rows = connection.execute(select(Book.book_id, Book.title, Book.authors, Book.image_url))
        cards = {
            int(row.book_id): BookCard(
                int(row.book_id), row.title, row.authors or "", row.image_url
            )
            for row in rows
        }
        return cls(cards, stamp)

    def get(self, book_id: int) -> BookCard | None:
        return self.cards.get(book_id)

    def __len__(self) -> int:
        return len(self.cards)
