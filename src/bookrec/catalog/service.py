"""Catalog rules the edges call: browsing, search and lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bookrec.catalog import repository, search
from bookrec.catalog.models import Author, Book, BookAuthor, BookTag, Tag
from bookrec.db.paging import page_of_objects, page_of_rows
from bookrec.errors import InvalidInput, NotFound
from bookrec.recsys.languages import UnknownLanguage, requested_family


def language_filter(value: str | None) -> str | None:
    """The language family a `language` filter asks for ('eng', 'en-GB' -> 'en'); 422 naming
    the field when the value is not a language code."""
    if value is None:
        return None
    try:
        return requested_family(value)
    except UnknownLanguage as exc:
        raise InvalidInput(f"language: {exc}", field="language") from None


@dataclass(frozen=True)
class BookQuery:
    q: str | None = None
    tag: str | None = None
    language: str | None = None
    year_min: int | None = None
    year_max: int | None = None

    def check(self) -> None:
        language_filter(self.language)
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise InvalidInput(
                f"year_min ({self.year_min}) is after year_max ({self.year_max})", field="year_min"
            )


def search_books(
    session: Session, query: BookQuery, offset: int, limit: int
) -> tuple[list[Book], int]:
    """A page of matching books and the total number that match: with a text query, the
    best matches first (see `catalog.search`), else the most rated first."""
    query.check()
    filters = repository.book_filters(
        query.tag, language_filter(query.language), query.year_min, query.year_max
    )
    if query.q is not None:
        hits = search.search(session, query.q, filters, offset, limit)
        return hits.books, hits.total
    ordered = (
        select(Book).where(*filters).order_by(Book.ratings_count.desc().nulls_last(), Book.book_id)
    )
    return page_of_objects(session, ordered, offset, limit)


def suggest_books(session: Session, q: str, limit: int = 10) -> list[Book]:
    """Type-ahead: at most `limit` books whose title, authors, series or tags start like `q`."""
    return search.search(session, q, repository.book_filters(), 0, limit).books


def book_exists(session: Session, book_id: int) -> bool:
    """Whether the catalogue has this book (a deleted book is not in it)."""
    book = session.get(Book, book_id)
    return book is not None and book.deleted_at is None


def get_book(session: Session, book_id: int) -> tuple[Book, list[str]]:
    book = session.scalars(
        select(Book)
        .where(Book.book_id == book_id, Book.deleted_at.is_(None))
        .options(selectinload(Book.author_links).joinedload(BookAuthor.author))
    ).one_or_none()
    if book is None:
        raise NotFound("book", book_id)
    tags = repository.tags_of_books(session.connection(), [book_id]).get(book_id, [])
    return book, tags


def books_by_id(session: Session, book_ids: Sequence[int]) -> dict[int, Book]:
    if not book_ids:
        return {}
    rows = session.scalars(
        select(Book).where(Book.book_id.in_(list(book_ids)), Book.deleted_at.is_(None))
    ).all()
    return {book.book_id: book for book in rows}


def list_tags(
    session: Session, q: str | None, offset: int, limit: int
) -> tuple[list[tuple[int, str, int]], int]:
    """Tags that at least one book in the catalogue carries, with how many books carry each,
    most used first (tags.csv may name thousands of tags no book has)."""
    counts = (
        select(BookTag.tag_id, func.count().label("book_count"))
        .join(Book, Book.book_id == BookTag.book_id)
        .where(Book.deleted_at.is_(None))
        .group_by(BookTag.tag_id)
        .subquery()
    )
    statement = select(Tag.tag_id, Tag.name, counts.c.book_count).join(
        counts, counts.c.tag_id == Tag.tag_id
    )
    if q:
        statement = statement.where(func.lower(Tag.name).contains(q.lower(), autoescape=True))
    ordered = statement.order_by(counts.c.book_count.desc(), Tag.name)
    rows, total = page_of_rows(session, ordered, offset, limit)
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows], total


def tag_ids_named(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of tags with these exact names; an unknown name is a 404 naming it."""
    rows = session.execute(select(Tag.name, Tag.tag_id).where(Tag.name.in_(list(names))))
    found = {row.name: row.tag_id for row in rows}
    missing = [n for n in names if n not in found]
    if missing:
        raise NotFound("tag", missing[0])
    return [found[n] for n in names]


def author_ids_named(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of authors with these exact names (unknown names match nothing)."""
    if not names:
        return []
    return list(session.scalars(select(Author.author_id).where(Author.name.in_(list(names)))))
