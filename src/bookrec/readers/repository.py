"""SQL of reader activity: id look-ups, activity versions, one reader's ratings, shelf and events.

Every write that changes a reader's ratings or shelf moves the reader's `activity_version` in
the same statement sequence (`touch`), so the version read with a reader's id is enough to
know whether a list kept for them (cached, or precomputed at training) is still theirs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Row

from bookrec.catalog.models import Book
from bookrec.db.base import table_of
from bookrec.db.paging import page_of_rows
from bookrec.db.upsert import upsert
from bookrec.readers.models import Event, Rating, Reader, ShelfItem
from bookrec.recsys.data import ReaderHistory

readers_table = table_of(Reader)
ratings_table = table_of(Rating)
shelf_table = table_of(ShelfItem)
events_table = table_of(Event)


@dataclass(frozen=True, slots=True)
class ReaderVersion:
    """A reader and the version of their activity when it was read."""

    reader_id: int
    activity_version: int


def reader_ids_by_external(connection: Connection, external_ids: Sequence[int]) -> dict[int, int]:
    """Data set user id -> reader id, for the ids that exist."""
    found: dict[int, int] = {}
    ids = list(dict.fromkeys(int(i) for i in external_ids))
    for start in range(0, len(ids), 5000):
        rows = connection.execute(
            select(Reader.external_id, Reader.reader_id).where(
                Reader.external_id.in_(ids[start : start + 5000])
            )
        )
        found.update({int(row.external_id or 0): int(row.reader_id) for row in rows})
    return found


def all_shelves(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(reader_id, book_id) of every shelf entry, sorted by reader."""
    return _integer_pairs(
        connection.execute(
            select(ShelfItem.reader_id, ShelfItem.book_id).order_by(ShelfItem.reader_id)
        ).all()
    )


def all_activity_versions(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(reader ids, sorted; their activity versions) of every reader."""
    return _integer_pairs(
        connection.execute(
            select(Reader.reader_id, Reader.activity_version).order_by(Reader.reader_id)
        ).all()
    )


def _integer_pairs(rows: Sequence[Row[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    # the rows' values, flattened: np.asarray(rows) probes every Row for the array
    # protocols first, through SQLAlchemy's missing-key path (0.5 s for 53k readers)
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows))
    return np.ascontiguousarray(flat[0::2]), np.ascontiguousarray(flat[1::2])


# ---------------------------------------------------------------------------------------------
# the activity version


def touch(connection: Connection, reader_id: int) -> None:
    """Move the reader's activity version: their ratings or shelf just changed."""
    connection.execute(
        update(readers_table)
        .where(readers_table.c.reader_id == reader_id)
        .values(activity_version=readers_table.c.activity_version + 1)
    )


def touch_many(connection: Connection, reader_ids: np.ndarray) -> None:
    """`touch` for many readers at once (an import that changed their rows)."""
    ids = np.unique(np.asarray(reader_ids, dtype=np.int64)).tolist()
    statement = (
        update(readers_table)
        .where(readers_table.c.reader_id == bindparam("touched"))
        .values(activity_version=readers_table.c.activity_version + 1)
    )
    for start in range(0, len(ids), 10_000):
        connection.execute(statement, [{"touched": i} for i in ids[start : start + 10_000]])


def _version_statement(by_external: bool) -> Select[int, int]:
    who = Reader.external_id if by_external else Reader.reader_id
    return select(Reader.reader_id, Reader.activity_version).where(who == bindparam("reader"))


# built once: on the request path a statement only binds its parameter
_VERSION_BY_READER = _version_statement(by_external=False)
_VERSION_BY_EXTERNAL = _version_statement(by_external=True)


def _who(reader_id: int | None, external_id: int | None) -> tuple[bool, int]:
    if reader_id is not None and external_id is None:
        return False, reader_id
    if external_id is not None and reader_id is None:
        return True, external_id
    raise ValueError("give exactly one of reader_id and external_id")


def activity_version(
    connection: Connection, *, reader_id: int | None = None, external_id: int | None = None
) -> ReaderVersion | None:
    """The reader (by reader id or data set user id) and their activity version: one indexed
    row. None when no such reader exists."""
    by_external, value = _who(reader_id, external_id)
    statement = _VERSION_BY_EXTERNAL if by_external else _VERSION_BY_READER
    row = connection.execute(statement, {"reader": value}).first()
    return None if row is None else ReaderVersion(int(row[0]), int(row[1]))


class ActivityVersions:
    """`activity_version` for a worker's event loop, on a DBAPI connection of its own.

    The statements are compiled once and each call is one `cursor.execute`: SQLAlchemy's
    per-execution work costs more than SQLite takes to read one indexed row. Only for SQLite
    (a local read of a few pages; a network round trip must not block the loop). Not
    thread-safe: one instance per thread.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._by_reader = _CompiledQuery(_VERSION_BY_READER, engine, "reader")
        self._by_external = _CompiledQuery(_VERSION_BY_EXTERNAL, engine, "reader")

    def __call__(
        self, *, reader_id: int | None = None, external_id: int | None = None
    ) -> ReaderVersion | None:
        by_external, value = _who(reader_id, external_id)
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        query = self._by_external if by_external else self._by_reader
        row = query.first(self._connection, value)
        return None if row is None else ReaderVersion(int(row[0]), int(row[1]))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _CompiledQuery:
    """A select with one bound value, compiled for the engine's dialect and driver."""

    def __init__(self, statement: Select[int, int], engine: Engine, name: str) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self._parameters = compiled.construct_params({name: 0})
        self._order = compiled.positiontup if compiled.positional else None
        self._name = name

    def first(self, connection: Any, value: object) -> Sequence[Any] | None:
        parameters = {**self._parameters, self._name: value}
        arguments = tuple(parameters[key] for key in self._order) if self._order else parameters
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, arguments)
            rows = cursor.fetchall()  # to the end: SQLite keeps a read snapshot until then
        finally:
            cursor.close()
        return rows[0] if rows else None


# ---------------------------------------------------------------------------------------------
# one reader's activity, as serving reads it


@dataclass(frozen=True)
class ReaderActivity:
    """What serving needs about one reader: their ratings and their shelf."""

    reader_id: int
    history: ReaderHistory
    shelf: np.ndarray  # book ids, sorted


_ACTIVITY: CompoundSelect[int, int, int | None, int | None] = union_all(
    select(
        literal(0).label("shelf"), Rating.book_id, Rating.rating, Rating.rated_at.label("at")
    ).where(Rating.reader_id == bindparam("reader")),
    select(
        literal(1).label("shelf"),
        ShelfItem.book_id,
        literal(None).label("rating"),
        ShelfItem.added_at.label("at"),
    ).where(ShelfItem.reader_id == bindparam("reader")),
)


def activity_of(connection: Connection, reader_id: int) -> ReaderActivity:
    """A reader's ratings and shelf in one round trip, sorted by book (equal activity gives
    equal arrays)."""
    rows: list[Any] = list(connection.execute(_ACTIVITY, {"reader": reader_id}).all())
    rated = sorted((r[1], r[2], r[3]) for r in rows if r[0] == 0)
    shelved = np.sort(np.asarray([r[1] for r in rows if r[0] == 1], dtype=np.int64))
    if not rated:
        return ReaderActivity(reader_id, ReaderHistory.empty(), shelved)
    books, values, times = zip(*rated, strict=True)
    history = ReaderHistory(
        np.asarray(books, np.int64),
        np.asarray(values, np.float32),
        np.asarray([-1 if t is None else t for t in times], np.int64),
    )
    return ReaderActivity(reader_id, history, shelved)


# ---------------------------------------------------------------------------------------------
# one reader's activity, as the API writes and pages through it


def insert_rating(
    connection: Connection, reader_id: int, book_id: int, rating: int, rated_at: int
) -> bool:
    """Add a rating unless the reader already rated the book; True when it was added.

    `ON CONFLICT DO NOTHING`: a concurrent identical insert waits and then does nothing,
    instead of failing on the primary key.
    """
    row = {"reader_id": reader_id, "book_id": book_id, "rating": rating, "rated_at": rated_at}
    added = upsert(connection, ratings_table, [row], keys=["reader_id", "book_id"], update=[]) == 1
    if added:
        touch(connection, reader_id)
    return added


def update_rating(
    connection: Connection, reader_id: int, book_id: int, rating: int, rated_at: int
) -> bool:
    """Change an existing rating; False when the reader has not rated the book."""
    result = connection.execute(
        update(ratings_table)
        .where(ratings_table.c.reader_id == reader_id, ratings_table.c.book_id == book_id)
        .values(rating=rating, rated_at=rated_at)
    )
    if result.rowcount > 0:
        touch(connection, reader_id)
    return result.rowcount > 0


def delete_rating(connection: Connection, reader_id: int, book_id: int) -> None:
    _delete_and_touch(connection, ratings_table, reader_id, book_id)


def _delete_and_touch(connection: Connection, table: Table, reader_id: int, book_id: int) -> None:
    """Delete the reader's row for the book; a deletion moves their activity version."""
    result = connection.execute(
        delete(table).where(table.c.reader_id == reader_id, table.c.book_id == book_id)
    )
    if result.rowcount > 0:
        touch(connection, reader_id)


def ratings_page(
    connection: Connection, reader_id: int, offset: int, limit: int
) -> tuple[Sequence[Any], int]:
    """A page of the reader's ratings with book title and authors, newest first; and the total."""
    query = (
        select(Rating.book_id, Book.title, Book.authors, Rating.rating, Rating.rated_at)
        .join(Book, Book.book_id == Rating.book_id)
        .where(Rating.reader_id == reader_id)
        .order_by(Rating.rated_at.desc().nulls_last(), Rating.book_id.desc())
    )
    return page_of_rows(connection, query, offset, limit)


def insert_shelf_item(connection: Connection, reader_id: int, book_id: int, added_at: int) -> bool:
    """Put a book on the reader's to-read shelf unless it is there; True when it was added."""
    row = {"reader_id": reader_id, "book_id": book_id, "added_at": added_at}
    added = upsert(connection, shelf_table, [row], keys=["reader_id", "book_id"], update=[]) == 1
    if added:
        touch(connection, reader_id)
    return added


def shelf_added_at(connection: Connection, reader_id: int, book_id: int) -> int | None:
    """When the book went on the reader's shelf (None when unknown or not there)."""
    return connection.scalar(
        select(ShelfItem.added_at).where(
            ShelfItem.reader_id == reader_id, ShelfItem.book_id == book_id
        )
    )


def delete_shelf_item(connection: Connection, reader_id: int, book_id: int) -> None:
    _delete_and_touch(connection, shelf_table, reader_id, book_id)


def shelf_page(
    connection: Connection, reader_id: int, offset: int, limit: int
) -> tuple[Sequence[Any], int]:
    """A page of the reader's shelf with book title and authors, newest first; and the total."""
    query = (
        select(ShelfItem.book_id, Book.title, Book.authors, ShelfItem.added_at)
        .join(Book, Book.book_id == ShelfItem.book_id)
        .where(ShelfItem.reader_id == reader_id)
        .order_by(ShelfItem.added_at.desc().nulls_last(), ShelfItem.book_id.desc())
    )
    return page_of_rows(connection, query, offset, limit)


def count_events(connection: Connection, reader_id: int) -> int:
    """How many events the reader holds."""
    counted = connection.execute(
        select(func.count()).select_from(events_table).where(events_table.c.reader_id == reader_id)
    ).scalar_one()
    return int(counted)


def delete_events_before(connection: Connection, cutoff: int, reader_id: int | None = None) -> int:
    """Delete events that happened before `cutoff` (Unix seconds), of one reader or all."""
    statement = delete(events_table).where(events_table.c.occurred_at < cutoff)
    if reader_id is not None:
        statement = statement.where(events_table.c.reader_id == reader_id)
    return connection.execute(statement).rowcount or 0


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (reader_id, book_id, kind, occurred_at, context) in one statement."""
    if rows:
        connection.execute(insert(events_table), list(rows))
