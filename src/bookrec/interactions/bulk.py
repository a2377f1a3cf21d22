"""Bulk writers for the big files (ratings, to-read shelf): the import's fast paths.

PostgreSQL: the validated blocks' raw bytes go through `COPY` into a temporary staging table,
then one set-based `INSERT ... SELECT ... ON CONFLICT` merges them. SQLite: rows go through
`executemany` in one large transaction. On both, rows already holding the same values are not
rewritten, so a re-import changes nothing, and a key listed twice in a file keeps its last row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, select, text

from bookrec.accounts.models import Reader
from bookrec.interactions.csvfiles import RATINGS, TO_READ, Block, BlockFile, BlockSpec


@dataclass(frozen=True)
class BigTable:
    """Where a big file goes: target table and which file column fills which table column."""

    spec: BlockSpec
    table: str
    value_column: str | None  # file column copied as a value (ratings: rating)
    time_column: str  # table column that receives the file's optional `timestamp`


RATINGS_TABLE = BigTable(RATINGS, "ratings", "rating", "rated_at")
SHELF_TABLE = BigTable(TO_READ, "shelf", None, "added_at")


class ReaderMap:
    """Maps data set user ids to reader ids, creating readers the first time an id is seen."""

    def __init__(self, connection: Connection, dataset_id: int) -> None:
        self._connection = connection
        self._dataset_id = dataset_id
        rows = connection.execute(
            select(Reader.external_id, Reader.reader_id)
            .where(Reader.external_id.is_not(None))
            .order_by(Reader.external_id)
        ).all()
        self._external = np.asarray([r[0] for r in rows], dtype=np.int64)
        self._reader = np.asarray([r[1] for r in rows], dtype=np.int64)
        self.created = 0

    def resolve(self, external_ids: np.ndarray) -> np.ndarray:
        """Reader ids for these external ids (creating missing readers)."""
        self.ensure(np.unique(external_ids))
        return self._reader[np.searchsorted(self._external, external_ids)]

    def ensure(self, unique_ids: np.ndarray) -> None:
        """Create readers for the ids (sorted, unique) not seen yet."""
        position = np.searchsorted(self._external, unique_ids)
        known = position < len(self._external)
        known[known] = self._external[position[known]] == unique_ids[known]
        missing = unique_ids[~known]
        if not len(missing):
            return
        highest = self._connection.execute(
            text("SELECT coalesce(max(reader_id), 0) FROM readers")
        ).scalar_one()
        now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
        self._connection.exec_driver_sql(
            "INSERT INTO readers (external_id, dataset_id, created_at) VALUES "
            + ("(%s, %s, %s)" if self._connection.dialect.name == "postgresql" else "(?, ?, ?)"),
            [(int(e), self._dataset_id, now) for e in missing],
        )
        new = self._connection.execute(
            select(Reader.external_id, Reader.reader_id).where(Reader.reader_id > highest)
        ).all()
        external = np.concatenate([self._external, [r[0] for r in new]]).astype(np.int64)
        reader = np.concatenate([self._reader, [r[1] for r in new]]).astype(np.int64)
        order = np.argsort(external, kind="stable")
        self._external, self._reader = external[order], reader[order]
        self.created += len(new)


class SqliteWriter:
    """Upserts each block with executemany inside the import's transaction."""

    def __init__(
        self, connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
    ) -> None:
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._readers = readers
        self._has_time = "timestamp" in source.present
        self._target = target
        columns = ["reader_id", "book_id"]
        updates = []
        if target.value_column:
            columns.append(target.value_column)
            updates.append(target.value_column)
        if self._has_time:
            columns.append(target.time_column)
            updates.append(target.time_column)
        placeholders = ", ".join("?" for _ in columns)
        if updates:
            conflict = (
                "DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in updates)
                + " WHERE "
                + " OR ".join(f"{target.table}.{c} IS NOT excluded.{c}" for c in updates)
            )
        else:
            conflict = "DO NOTHING"
        self._sql = (
            f"INSERT INTO {target.table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT (reader_id, book_id) {conflict}"
        )
        self.written = 0
        self.rows = 0

    def write(self, block: Block) -> None:
        columns = block.columns
        arrays: list[Any] = [
            self._readers.resolve(columns["user_id"]).tolist(),
            columns["book_id"].tolist(),
        ]
        if self._target.value_column:
            arrays.append(columns[self._target.value_column].tolist())
        if self._has_time:
            arrays.append(columns["timestamp"].tolist())
        self._cursor.executemany(self._sql, zip(*arrays, strict=True))
        self.written += max(self._cursor.rowcount, 0)
        self.rows += len(block)

    def finish(self) -> None:
        self._cursor.close()

    def abort(self, error: BaseException) -> None:
        self._cursor.close()


class PostgresWriter:
    """Streams raw blocks into a temporary staging table with COPY, then merges once."""

    def __init__(
        self, connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
    ) -> None:
        from psycopg.copy import QueuedLibpqWriter

        self._connection = connection
        self._raw = connection.connection.driver_connection
        self._readers = readers
        self._target = target
        self._source = source
        self._stage = f"stage_{target.table}"
        typed = set(source.present)
        definitions = ", ".join(
            f'"{_column_name(name, i)}" {"bigint" if name in typed else "text"}'
            for i, name in enumerate(source.header)
        )
        self._cursor = self._raw.cursor()  # type: ignore[union-attr]
        self._cursor.execute(f"CREATE TEMP TABLE {self._stage} ({definitions}) ON COMMIT DROP")
        # the queued writer sends data from a thread while the next block is parsed
        self._copy_context = self._cursor.copy(
            f"COPY {self._stage} FROM STDIN (FORMAT csv)", writer=QueuedLibpqWriter(self._cursor)
        )
        self._copy = self._copy_context.__enter__()
        self._user_ids: list[np.ndarray] = []
        self.written = 0
        self.rows = 0

    def write(self, block: Block) -> None:
        self._user_ids.append(np.unique(block.columns["user_id"]))
        self._copy.write(block.raw)
        self.rows += len(block)

    def abort(self, error: BaseException) -> None:
        """End the COPY with an error so the connection can roll back."""
        self._copy_context.__exit__(type(error), error, error.__traceback__)
        self._cursor.close()

    def finish(self) -> None:
        self._copy_context.__exit__(None, None, None)
        # the connection is busy while COPY runs: readers are created once it is done
        if self._user_ids:
            self._readers.ensure(np.unique(np.concatenate(self._user_ids)))
        target, stage = self._target, self._stage
        has_time = "timestamp" in self._source.present
        select_list = ["r.reader_id", "s.book_id"]
        columns = ["reader_id", "book_id"]
        updates = []
        if target.value_column:
            columns.append(target.value_column)
            select_list.append(f"s.{target.value_column}")
            updates.append(target.value_column)
        if has_time:
            columns.append(target.time_column)
            select_list.append('s."timestamp"')
            updates.append(target.time_column)
        if updates:
            conflict = (
                "DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in updates)
                + " WHERE "
                + " OR ".join(f"{target.table}.{c} IS DISTINCT FROM excluded.{c}" for c in updates)
            )
        else:
            conflict = "DO NOTHING"
        insert = f"INSERT INTO {target.table} ({', '.join(columns)}) "
        source = (
            f"SELECT {', '.join(select_list)} FROM {stage} s "
            "JOIN readers r ON r.external_id = s.user_id"
        )
        tail = f" ON CONFLICT (reader_id, book_id) {conflict}"
        from psycopg.errors import CardinalityViolation

        self._cursor.execute("SAVEPOINT bulk_merge")
        try:
            self._cursor.execute(insert + source + tail)
        except CardinalityViolation:
            # the file names a (user, book) pair twice: keep the last row, as SQLite does
            self._cursor.execute("ROLLBACK TO SAVEPOINT bulk_merge")
            last_wins = (
                f"SELECT DISTINCT ON (s.user_id, s.book_id) {', '.join(select_list)} "
                f"FROM {stage} s JOIN readers r ON r.external_id = s.user_id "
                "ORDER BY s.user_id, s.book_id, s.ctid DESC"
            )
            self._cursor.execute(insert + last_wins + tail)
        self.written = max(self._cursor.rowcount, 0)
        self._cursor.execute("RELEASE SAVEPOINT bulk_merge")
        self._cursor.execute(f"DROP TABLE {self._stage}")
        self._cursor.close()


def _column_name(name: str, index: int) -> str:
    """Staging column names: the spec's own names, others by position (never user text)."""
    known = {*RATINGS.required, *RATINGS.optional, *TO_READ.required}
    return name if name in known else f"extra_{index}"


def make_writer(
    connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
) -> SqliteWriter | PostgresWriter:
    if connection.dialect.name == "postgresql":
        return PostgresWriter(connection, target, source, readers)
    return SqliteWriter(connection, target, source, readers)
