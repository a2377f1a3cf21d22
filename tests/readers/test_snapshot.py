"""The training snapshot reads every rating as stored, whichever way the database is read:
SQLite's packed rows joined into strings a range of readers at a time (with and without times,
and the plain rows when ids are too wide to pack), PostgreSQL's `COPY`."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, text

from bookrec.readers import snapshot
from bookrec.recsys.data import Interactions

QUERY = "SELECT reader_id, book_id, rating, coalesce(rated_at, -1) FROM ratings"


def _stored(connection: Connection) -> np.ndarray:
    rows = connection.exec_driver_sql(QUERY + " ORDER BY reader_id, book_id").all()
    return np.asarray(rows, dtype=np.int64)


def _read(interactions: Interactions) -> np.ndarray:
    timestamps = interactions.timestamp
    table = np.column_stack(
        [
            interactions.users.ids[interactions.user_index],
            interactions.items.ids[interactions.item_index],
            interactions.rating.astype(np.int64),
            timestamps if timestamps is not None else np.full(len(interactions), -1),
        ]
    )
    return table[np.lexsort((table[:, 1], table[:, 0]))]


def test_every_rating_is_read_as_stored(imported: Engine) -> None:
    with imported.connect() as connection:
        loaded = snapshot.load_snapshot(connection).interactions
        assert len(loaded) == 4000 and loaded.timestamp is not None
        assert np.array_equal(_read(loaded), _stored(connection))
        # a reader with no known time on a rating and one who rated nothing stay as they are
        connection.execute(text("UPDATE ratings SET rated_at = NULL WHERE rating = 3"))
        connection.execute(
            text("DELETE FROM ratings WHERE reader_id = (SELECT max(reader_id) FROM readers)")
        )
        loaded = snapshot.load_snapshot(connection).interactions
        assert np.array_equal(_read(loaded), _stored(connection))
        connection.rollback()


def test_sqlite_packs_rows_and_falls_back_for_wide_ids(
    imported: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if imported.dialect.name != "sqlite":
        pytest.skip("PostgreSQL is read with COPY")
    monkeypatch.setattr(snapshot, "READERS_PER_STRING", 7)  # many strings, a short last one
    with imported.connect() as connection:
        connection.execute(text("PRAGMA foreign_keys=OFF"))  # only outside a transaction
        plain = snapshot._fetch_columns(connection, QUERY)
        packed = snapshot._fetch_sqlite_ratings(connection)
        assert packed is not None
        assert all(np.array_equal(a, b) for a, b in zip(packed, plain, strict=True))

        # no times at all: one packed value a row, -1 for every time
        connection.execute(text("UPDATE ratings SET rated_at = NULL"))
        packed = snapshot._fetch_sqlite_ratings(connection)
        assert packed is not None and (packed[3] == -1).all()
        assert np.array_equal(packed[0], plain[0]) and np.array_equal(packed[2], plain[2])

        # strings longer than SQLite allows: the plain rows, the same ratings
        raw = connection.connection.driver_connection
        length = raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200)
        try:
            assert snapshot._fetch_sqlite_ratings(connection) is None
            loaded = snapshot.load_snapshot(connection).interactions
            assert np.array_equal(_read(loaded), _stored(connection))
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, length)

        # a book id too wide to pack beside the reader id: the plain rows, the same ratings
        book = connection.exec_driver_sql("SELECT max(book_id) FROM books").scalar_one()
        wide = 2**60
        connection.execute(text(f"UPDATE books SET book_id = {wide} WHERE book_id = {book}"))
        connection.execute(text(f"UPDATE ratings SET book_id = {wide} WHERE book_id = {book}"))
        assert snapshot._fetch_sqlite_ratings(connection) is None
        loaded = snapshot.load_snapshot(connection).interactions
        assert wide in loaded.items.ids
        assert np.array_equal(_read(loaded), _stored(connection))
        connection.rollback()
        connection.execute(text("PRAGMA foreign_keys=ON"))


def test_an_empty_database_gives_no_ratings(engine: Engine) -> None:
    with engine.connect() as connection:
        loaded = snapshot.load_snapshot(connection)
    assert len(loaded.interactions) == 0
