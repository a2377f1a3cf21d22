"""SQL of the catalog: bulk upserts used by import, and the queries the API pages through."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)

from bookrec.catalog.models import Author, Book, BookAuthor, BookTag, Tag
from bookrec.db.base import table_of
from bookrec.db.upsert import upsert
from bookrec.recsys.languages import spellings

books_table = table_of(Book)
authors_table = table_of(Author)
book_authors_table = table_of(BookAuthor)
tags_table = table_of(Tag)
book_tags_table = table_of(BookTag)


def known_book_ids(connection: Connection) -> np.ndarray:
    """Sorted ids of every book in the catalog."""
    ids = connection.execute(select(Book.book_id).order_by(Book.book_id)).scalars().all()
    return np.asarray(ids, dtype=np.int64)


def goodreads_to_book_ids(connection: Connection) -> dict[int, int]:
    rows = connection.execute(
        select(Book.goodreads_book_id, Book.book_id).where(Book.goodreads_book_id.is_not(None))
    )
    return {int(row.goodreads_book_id or 0): int(row.book_id) for row in rows}


def upsert_books(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update books; `updated_at` moves only for books whose values changed."""
    if not rows:
        return 0
    columns = [c for c in rows[0] if c != "book_id"]
    return upsert(
        connection,
        books_table,
        rows,
        keys=["book_id"],
        update=columns,
        touch={"updated_at": func.now()},
    )


def sync_book_authors(connection: Connection, authors_by_book: dict[int, list[str]]) -> int:
    """Make each listed book's authors exactly `authors_by_book[book]` (order kept)."""
    names = sorted({name for names in authors_by_book.values() for name in names})
    upsert(connection, authors_table, [{"name": n} for n in names], keys=["name"], update=[])
    rows = connection.execute(select(Author.name, Author.author_id))
    author_ids = {row.name: row.author_id for row in rows}
    wanted = {
        (book_id, author_ids[name]): position
        for book_id, book_names in authors_by_book.items()
        for position, name in enumerate(book_names)
    }
    existing = {
        (b, a): p
        for b, a, p in connection.execute(
            select(BookAuthor.book_id, BookAuthor.author_id, BookAuthor.position)
        )
        if b in authors_by_book
    }
    stale = [key for key in existing if key not in wanted]
    for start in range(0, len(stale), 500):
        connection.execute(
            delete(book_authors_table).where(
                tuple_(book_authors_table.c.book_id, book_authors_table.c.author_id).in_(
                    stale[start : start + 500]
                )
            )
        )
    changed = [
        {"book_id": b, "author_id": a, "position": p}
        for (b, a), p in wanted.items()
        if existing.get((b, a)) != p
    ]
    upsert(connection, book_authors_table, changed, keys=["book_id", "author_id"])
    return len(stale) + len(changed)


def upsert_tags(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    return upsert(connection, tags_table, rows, keys=["tag_id"])


def sync_book_tags(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Make the tags of every book in `rows` exactly those rows (with their counts)."""
    books = {row["book_id"] for row in rows}
    wanted = {(row["book_id"], row["tag_id"]) for row in rows}
    existing = [
        (b, t)
        for b, t in connection.execute(select(BookTag.book_id, BookTag.tag_id))
        if b in books and (b, t) not in wanted
    ]
    for start in range(0, len(existing), 500):
        connection.execute(
            delete(book_tags_table).where(
                tuple_(book_tags_table.c.book_id, book_tags_table.c.tag_id).in_(
                    existing[start : start + 500]
                )
            )
        )
    return len(existing) + upsert(
        connection, book_tags_table, rows, keys=["book_id", "tag_id"], batch_size=5000
    )


def known_tag_ids(connection: Connection) -> set[int]:
    return set(connection.execute(select(Tag.tag_id)).scalars())


# ---------------------------------------------------------------------------------------------
# browsing


def book_filters(
    tag: str | None = None,
    language: str | None = None,
    year_min: int | None = None,
    year_max: int | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on books for the browse filters (a language is a family such as 'en')."""
    conditions: list[ColumnElement[bool]] = [Book.deleted_at.is_(None)]
    if tag:
        conditions.append(
            Book.book_id.in_(
                select(BookTag.book_id)
                .join(Tag, Tag.tag_id == BookTag.tag_id)
                .where(Tag.name == tag)
            )
        )
    if language:
        conditions.append(_in_language_family(language))
    if year_min is not None:
        conditions.append(Book.original_publication_year >= year_min)
    if year_max is not None:
        conditions.append(Book.original_publication_year <= year_max)
    return conditions


def _in_language_family(language_family: str) -> ColumnElement[bool]:
    """Books whose code is any spelling of the family: 'en' matches eng, en, en-US, en-GB..."""
    codes, prefixes = spellings(language_family)
    code = func.lower(Book.language_code)
    return or_(
        code.in_(sorted(codes)),
        *(code.like(_escape_like(prefix) + "%", escape="\\") for prefix in prefixes),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tags_of_books(
    connection: Connection, book_ids: Iterable[int], limit: int = 10
) -> dict[int, list[str]]:
    """The most-used tag names of each book, most used first."""
    ids = list(book_ids)
    if not ids:
        return {}
    rows = connection.execute(
        select(BookTag.book_id, Tag.name)
        .join(Tag, Tag.tag_id == BookTag.tag_id)
        .where(BookTag.book_id.in_(ids))
        .order_by(BookTag.book_id, BookTag.count.desc(), Tag.name)
    )
    result: dict[int, list[str]] = {}
    for book_id, name in rows:
        names = result.setdefault(book_id, [])
        if len(names) < limit:
            names.append(name)
    return result


# A book's search document holds the names of its most-used tags (goodbooks lists up to 100
# per book, most of them shelf names such as "to-read"; the first ones describe the book).
TAGS_IN_SEARCH = 20


def refresh_tag_names(connection: Connection, book_ids: Collection[int] | None = None) -> int:
    """Copy each book's most-used tag names into `books.tag_names`, which search indexes
    (all books, or only `book_ids`); returns how many books changed."""
    ids = None if book_ids is None else list(book_ids)
    links = select(BookTag.book_id, Tag.name).join(Tag, Tag.tag_id == BookTag.tag_id)
    current = select(Book.book_id, Book.tag_names)
    if ids is not None:
        links = links.where(BookTag.book_id.in_(ids))
        current = current.where(Book.book_id.in_(ids))
    names: dict[int, list[str]] = {}
    for book_id, name in connection.execute(
        links.order_by(BookTag.book_id, BookTag.count.desc(), Tag.name)
    ):
        kept = names.setdefault(book_id, [])
        if len(kept) < TAGS_IN_SEARCH:
            kept.append(name)
    changes = [
        {"target": book_id, "tag_names": wanted}
        for book_id, existing in connection.execute(current)
        if existing != (wanted := " ".join(names.get(book_id, [])))
    ]
    if changes:
        connection.execute(
            update(books_table)
            .where(books_table.c.book_id == bindparam("target"))
            .values(tag_names=bindparam("tag_names")),
            changes,
        )
    return len(changes)
