"""SQL of reader activity: histories, id lookups, and one reader's ratings, shelf and events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVarTuple

import numpy as np
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Row,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)

from bookrec.accounts.models import Reader
from bookrec.catalog.models import Book
from bookrec.db.base import table_of
from bookrec.db.upsert import upsert
from bookrec.interactions.models import Event, Rating, ShelfItem
from bookrec.recsys.data import ReaderHistory

ratings_table = table_of(Rating)
shelf_table = table_of(ShelfItem)
events_table = table_of(Event)

Columns = TypeVarTuple("Columns")


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


def history_of(connection: Connection, reader_id: int) -> ReaderHistory:
    rows = connection.execute(
        select(Rating.book_id, Rating.rating, Rating.rated_at).where(Rating.reader_id == reader_id)
    ).all()
    if not rows:
        return ReaderHistory.empty()
    books, ratings, times = zip(*rows, strict=True)
    return ReaderHistory(
        np.asarray(books, np.int64),
        np.asarray(ratings, np.float32),
        np.asarray([-1 if t is None else t for t in times], np.int64),
    )


def shelf_of(connection: Connection, reader_id: int) -> np.ndarray:
    """Book ids on the reader's to-read shelf (never recommended back to them)."""
    ids = connection.execute(select(ShelfItem.book_id).where(ShelfItem.reader_id == reader_id))
    return np.asarray(ids.scalars().all(), dtype=np.int64)


def all_shelves(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(reader_id, book_id) of every shelf entry, sorted by reader."""
    rows = connection.execute(
        select(ShelfItem.reader_id, ShelfItem.book_id).order_by(ShelfItem.reader_id)
    ).all()
    array = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    return array[:, 0], array[:, 1]


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
    return upsert(connection, ratings_table, [row], keys=["reader_id", "book_id"], update=[]) == 1


def update_rating(
    connection: Connection, reader_id: int, book_id: int, rating: int, rated_at: int
) -> bool:
    """Change an existing rating; False when the reader has not rated the book."""
    result = connection.execute(
        update(ratings_table)
        .where(ratings_table.c.reader_id == reader_id, ratings_table.c.book_id == book_id)
        .values(rating=rating, rated_at=rated_at)
    )
    return result.rowcount > 0


def delete_rating(connection: Connection, reader_id: int, book_id: int) -> None:
    connection.execute(
        delete(ratings_table).where(
            ratings_table.c.reader_id == reader_id, ratings_table.c.book_id == book_id
        )
    )


def ratings_page(
    connection: Connection, reader_id: int, offset: int, limit: int
) -> tuple[Sequence[Row[int, str, str, int, int | None]], int]:
    """A page of the reader's ratings with book title and authors, newest first; and the total."""
    query = (
        select(Rating.book_id, Book.title, Book.authors, Rating.rating, Rating.rated_at)
        .join(Book, Book.book_id == Rating.book_id)
        .where(Rating.reader_id == reader_id)
    )
    order = (Rating.rated_at.desc().nulls_last(), Rating.book_id.desc())
    return _page(connection, query, order, offset, limit)


def insert_shelf_item(connection: Connection, reader_id: int, book_id: int, added_at: int) -> bool:
    """Put a book on the reader's to-read shelf unless it is there; True when it was added."""
    row = {"reader_id": reader_id, "book_id": book_id, "added_at": added_at}
    return upsert(connection, shelf_table, [row], keys=["reader_id", "book_id"], update=[]) == 1


def shelf_added_at(connection: Connection, reader_id: int, book_id: int) -> int | None:
    """When the book went on the reader's shelf (None when unknown or not there)."""
    return connection.scalar(
        select(ShelfItem.added_at).where(
            ShelfItem.reader_id == reader_id, ShelfItem.book_id == book_id
        )
    )


def delete_shelf_item(connection: Connection, reader_id: int, book_id: int) -> None:
    connection.execute(
        delete(shelf_table).where(
            shelf_table.c.reader_id == reader_id, shelf_table.c.book_id == book_id
        )
    )


def shelf_page(
    connection: Connection, reader_id: int, offset: int, limit: int
) -> tuple[Sequence[Row[int, str, str, int | None]], int]:
    """A page of the reader's shelf with book title and authors, newest first; and the total."""
    query = (
        select(ShelfItem.book_id, Book.title, Book.authors, ShelfItem.added_at)
        .join(Book, Book.book_id == ShelfItem.book_id)
        .where(ShelfItem.reader_id == reader_id)
    )
    order = (ShelfItem.added_at.desc().nulls_last(), ShelfItem.book_id.desc())
    return _page(connection, query, order, offset, limit)


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (reader_id, book_id, kind, occurred_at, context) in one statement."""
    if rows:
        connection.execute(insert(events_table), list(rows))


def _page(
    connection: Connection,
    query: Select[*Columns],
    order: Sequence[Any],
    offset: int,
    limit: int,
) -> tuple[Sequence[Row[*Columns]], int]:
    total = connection.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = connection.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    return rows, int(total)


def _activity_statements(who: Any) -> tuple[Select[Any], CompoundSelect[Any]]:
    """The stamp and the rows of one reader's activity, `who` selecting the reader.

    Built once at import: on the request path a statement only binds its parameter (building
    SQLAlchemy expressions anew costs more than SQLite takes to answer).
    """
    shelf_of_reader = ShelfItem.reader_id == Reader.reader_id
    stamp = (
        select(
            Reader.reader_id,
            func.count(Rating.book_id),
            func.coalesce(func.sum(Rating.book_id * Rating.rating), 0),
            func.coalesce(func.sum(Rating.rated_at), 0),
            *(
                select(aggregate).where(shelf_of_reader).correlate(Reader).scalar_subquery()
                for aggregate in (
                    func.count(ShelfItem.book_id),
                    func.coalesce(func.sum(ShelfItem.book_id), 0),
                    func.coalesce(func.sum(ShelfItem.added_at), 0),
                )
            ),
        )
        .select_from(Reader)
        .outerjoin(Rating, Rating.reader_id == Reader.reader_id)
        .where(who)
        .group_by(Reader.reader_id)
    )
    rows: CompoundSelect[Any] = union_all(
        select(
            Reader.reader_id,
            literal(0).label("shelf"),
            Rating.book_id,
            Rating.rating,
            Rating.rated_at.label("at"),
        )
        .select_from(Reader)
        .outerjoin(Rating, Rating.reader_id == Reader.reader_id)
        .where(who),
        select(
            Reader.reader_id,
            literal(1).label("shelf"),
            ShelfItem.book_id,
            literal(None).label("rating"),
            ShelfItem.added_at.label("at"),
        )
        .select_from(Reader)
        .join(ShelfItem, shelf_of_reader)
        .where(who),
    )
    return stamp, rows


_BY_READER = _activity_statements(Reader.reader_id == bindparam("reader"))
_BY_EXTERNAL = _activity_statements(Reader.external_id == bindparam("reader"))


def _statements(
    reader_id: int | None, external_id: int | None
) -> tuple[tuple[Select[Any], CompoundSelect[Any]], dict[str, int]]:
    if reader_id is not None and external_id is None:
        return _BY_READER, {"reader": reader_id}
    if external_id is not None and reader_id is None:
        return _BY_EXTERNAL, {"reader": external_id}
    raise ValueError("give exactly one of reader_id and external_id")


def activity_stamp(
    connection: Connection, *, reader_id: int | None = None, external_id: int | None = None
) -> tuple[int, str] | None:
    """(reader id, a stamp that changes whenever the reader's ratings or shelf change).

    One row computed by the database: counts, and sums over book ids, ratings and times.
    Every write through the API sets its row's time to now, so a rating, re-rating,
    un-rating or shelving moves the stamp. None when no such reader exists.
    """
    (stamp, _), parameters = _statements(reader_id, external_id)
    return _stamp_of(connection.execute(stamp, parameters).first())


def _stamp_of(row: Sequence[Any] | None) -> tuple[int, str] | None:
    if row is None:
        return None
    return int(row[0]), ":".join(str(int(value)) for value in row[1:])


class ActivityStamps:
    """`activity_stamp` for the serving hot path, on one DBAPI connection of its own.

    The statements are compiled once; each call is one `cursor.execute`. SQLAlchemy's
    per-execution work (cache look-up, execution context, result wrapping) costs more than
    SQLite's own read of a reader's stamp, about 35 µs of every request. Not thread-safe:
    one instance per thread (a worker's event loop, where SQLite reads are local and short).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._by_reader = _CompiledQuery(_BY_READER[0], engine, "reader")
        self._by_external = _CompiledQuery(_BY_EXTERNAL[0], engine, "reader")

    def __call__(
        self, *, reader_id: int | None = None, external_id: int | None = None
    ) -> tuple[int, str] | None:
        if (reader_id is None) == (external_id is None):
            raise ValueError("give exactly one of reader_id and external_id")
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        if reader_id is not None:
            return _stamp_of(self._by_reader.first(self._connection, reader_id))
        return _stamp_of(self._by_external.first(self._connection, external_id))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _CompiledQuery:
    """A select with one bound value, compiled for the engine's dialect and driver."""

    def __init__(self, statement: Select[Any], engine: Engine, name: str) -> None:
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


@dataclass(frozen=True)
class ReaderActivity:
    """What serving needs about one reader: their ratings and their shelf."""

    reader_id: int
    history: ReaderHistory
    shelf: np.ndarray  # book ids, sorted


def activity_of(
    connection: Connection, *, reader_id: int | None = None, external_id: int | None = None
) -> ReaderActivity | None:
    """A reader's ratings and shelf in one round trip, by reader id or data set user id.

    None when no such reader exists. Rows come sorted by book so equal activity gives equal
    arrays.
    """
    (_, statement), parameters = _statements(reader_id, external_id)
    rows: list[Any] = list(connection.execute(statement, parameters).all())
    if not rows:
        return None
    rated = sorted((r[2], r[3], r[4]) for r in rows if r[1] == 0 and r[2] is not None)
    shelved = np.sort(np.asarray([r[2] for r in rows if r[1] == 1], dtype=np.int64))
    if rated:
        books, values, times = zip(*rated, strict=True)
        history = ReaderHistory(
            np.asarray(books, np.int64),
            np.asarray(values, np.float32),
            np.asarray([-1 if t is None else t for t in times], np.int64),
        )
    else:
        history = ReaderHistory.empty()
    return ReaderActivity(int(rows[0][0]), history, shelved)
