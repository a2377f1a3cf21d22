"""Every reader's ratings (and the catalog) out of the database as arrays, fast: what a model
trains and is evaluated on.

The model's user space is the internal `reader_id`: imported readers and API accounts alike.
PostgreSQL streams with `COPY ... TO STDOUT`. SQLite packs reader, book and rating into one
integer where the ids allow, and joins the rows of a range of readers into one comma-separated
string that numpy parses (Python's driver makes an object per value: packing halves the read,
joining in SQLite saves another third); ids too wide to pack are read in `fetchmany` batches.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection

from bookrec.catalog.arrays import load_catalog
from bookrec.recsys.data import Catalog, IdMap, Interactions

FETCH_ROWS = 500_000
#: readers whose ratings SQLite joins into one string (~10 MB at goodbooks' 112 a reader)
READERS_PER_STRING = 4096


@dataclass(frozen=True)
class Snapshot:
    """What a model was trained on."""

    interactions: Interactions
    catalog: Catalog

    def summary(self) -> dict[str, int | None]:
        timestamps = self.interactions.timestamp
        has_time = timestamps is not None and len(timestamps) and (timestamps >= 0).any()
        return {
            "ratings": len(self.interactions),
            "readers": len(self.interactions.users),
            "books": len(self.catalog.items),
            "newest_timestamp": int(timestamps.max())
            if has_time and timestamps is not None
            else None,
        }


def load_snapshot(connection: Connection) -> Snapshot:
    catalog = load_catalog(connection)
    return Snapshot(load_interactions(connection, catalog.items), catalog)


def load_interactions(connection: Connection, items: IdMap) -> Interactions:
    """All ratings of books in `items` as arrays (reader_id, book_id, rating, rated_at; -1
    for unknown times). Ratings of other books (deleted by an admin since, or added after the
    model that `items` comes from) are left out, not refused."""
    query = "SELECT reader_id, book_id, rating, coalesce(rated_at, -1) FROM ratings"
    if connection.dialect.name == "postgresql":
        columns = _copy_out(connection, query)
    else:
        columns = _fetch_sqlite_ratings(connection) or _fetch_columns(connection, query)
    keep = items.index(columns[1]) >= 0
    if not keep.all():
        columns = [column[keep] for column in columns]
    readers, books, ratings, times = columns
    has_time = bool(len(times)) and bool((times >= 0).any())
    return Interactions.from_ids(
        readers, books, ratings.astype(np.float32), times if has_time else None, items=items
    )


def _copy_out(connection: Connection, query: str) -> list[np.ndarray]:
    raw = connection.connection.driver_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:  # type: ignore[union-attr]
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(4)]
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=["a", "b", "c", "d"]),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.int64() for c in "abcd"}),
    )
    return [table.column(c).to_numpy() for c in "abcd"]


RATING_BITS = 3  # ratings are 1..5 (a check constraint)


def _fetch_sqlite_ratings(connection: Connection) -> list[np.ndarray] | None:
    """(reader_id, book_id, rating, rated_at or -1) with the first three packed into one
    integer a row, and the time only when some rating has one; None when the ids are too
    wide to pack or a range of readers' ratings is too long for one SQLite string."""
    bounds = connection.exec_driver_sql(
        "SELECT (SELECT min(reader_id) FROM readers), (SELECT max(reader_id) FROM readers),"
        " (SELECT min(book_id) FROM books), (SELECT max(book_id) FROM books)"
    ).one()
    if any(bound is None for bound in bounds):
        return None
    low_reader, high_reader, low_book, high_book = (int(bound) for bound in bounds)
    book_bits = high_book.bit_length()
    if min(low_reader, low_book) < 0 or high_reader.bit_length() + book_bits + RATING_BITS > 63:
        return None
    reader_shift = book_bits + RATING_BITS
    packed = f"(reader_id << {reader_shift}) | (book_id << {RATING_BITS}) | rating"
    timed = connection.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM ratings WHERE rated_at IS NOT NULL)"
    ).scalar()
    try:
        if timed:
            keys, times = _fetch_joined(connection, [packed, "coalesce(rated_at, -1)"])
        else:
            (keys,) = _fetch_joined(connection, [packed])
            times = np.full(len(keys), -1, dtype=np.int64)
    except sqlite3.DataError:  # a string longer than SQLite allows (readers with huge histories)
        return None
    return [
        keys >> reader_shift,
        (keys >> RATING_BITS) & ((1 << book_bits) - 1),
        keys & ((1 << RATING_BITS) - 1),
        times,
    ]


def _fetch_joined(connection: Connection, expressions: list[str]) -> list[np.ndarray]:
    """Integer `expressions` of every rating, READERS_PER_STRING readers at a time joined into
    one string by SQLite (`group_concat`, whose order does not matter: a row's values stay
    together) and parsed by numpy."""
    raw = connection.connection.driver_connection
    readers = np.fromiter(
        itertools.chain.from_iterable(
            raw.execute("SELECT reader_id FROM readers ORDER BY reader_id")  # type: ignore[union-attr]
        ),
        dtype=np.int64,
    )
    row = " || ',' || ".join(f"({expression})" for expression in expressions)
    query = f"SELECT group_concat({row}, ',') FROM ratings WHERE reader_id BETWEEN ? AND ?"
    parts = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(readers), READERS_PER_STRING):
        first, last = readers[start], readers[min(start + READERS_PER_STRING, len(readers)) - 1]
        (joined,) = raw.execute(query, (int(first), int(last))).fetchone()  # type: ignore[union-attr]
        if joined:
            parts.append(np.fromstring(joined, dtype=np.int64, sep=","))
    stacked = np.concatenate(parts).reshape(-1, len(expressions))
    return [np.ascontiguousarray(stacked[:, i]) for i in range(len(expressions))]


def _fetch_columns(connection: Connection, query: str) -> list[np.ndarray]:
    """Rows of integers in large batches, straight from the driver (no Row objects)."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(query)
        parts: list[np.ndarray] = []
        width = len(cursor.description)
        while rows := cursor.fetchmany(FETCH_ROWS):
            # fromiter over the flattened tuples converts in ~60 % of np.asarray(rows)'s time
            flat = itertools.chain.from_iterable(rows)
            parts.append(np.fromiter(flat, dtype=np.int64, count=len(rows) * width))
    finally:
        cursor.close()
    if not parts:
        return [np.zeros(0, dtype=np.int64) for _ in range(width)]
    stacked = np.concatenate(parts).reshape(-1, width)
    return [np.ascontiguousarray(stacked[:, i]) for i in range(width)]
