"""Bulk writers for the big files (ratings, to-read shelf): the import's fast paths.

Rows arrive as validated numpy blocks; data set user ids become reader ids in Python (new
readers get ids allocated here and are inserted in one batch), so the database only stores.

PostgreSQL, empty target table: the table's key and constraints are dropped inside the
import's transaction, rows stream in with binary `COPY`, then the primary key is rebuilt in
one sorted pass and the other constraints are re-attached. Every row was checked here against
the same transaction's books and readers and the value ranges, so the foreign keys and checks
are attached `NOT VALID` (enforced for every later write) instead of being re-proven by
another scan of millions of rows. A failure rolls everything back, constraints included.
PostgreSQL, table with rows: binary `COPY` into a temporary table, then one set-based
`INSERT ... ON CONFLICT DO UPDATE` of only the rows a hash join with the table finds new or
changed (a re-import of millions of unchanged rows otherwise probes the key once per row).
SQLite: upserts in one large transaction, foreign-key checks off for that connection (the
importer has checked every key). A block whose columns, each less its smallest value, fit one
63-bit integer a row goes as one statement over a JSON array of those integers, unpacked by
SQLite (`json_each`, shifts and masks): half the time of `executemany`, which builds, binds and
steps a tuple per row. A block too wide to pack, or an SQLite built without its JSON functions
(built in since 3.38), goes by `executemany`.

On every path a (reader, book) pair listed twice keeps its last row, and rows already holding
the same values are not rewritten, so a re-import changes nothing.

Readers who existed before the import and whose rows it changed get their activity version
moved (`readers.repository.touch_many`), so no list kept for their old activity is served:
exactly those readers on PostgreSQL's merge path; on SQLite, every such reader of a block in
which anything changed; on an empty table, every such reader in the file. A re-import that
changes nothing moves no version. Readers the import creates start at a fresh random version.
"""

from __future__ import annotations

import secrets
import sqlite3
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    CheckConstraint,
    Connection,
    ForeignKeyConstraint,
    PrimaryKeyConstraint,
    Table,
    select,
    text,
)
from sqlalchemy.schema import AddConstraint, DropConstraint

from bookrec.db.base import table_of
from bookrec.importing.csvfiles import (
    DENSE_LIMIT,
    RATINGS,
    TO_READ,
    Block,
    BlockFile,
    BlockSpec,
)
from bookrec.readers.models import ACTIVITY_VERSION_START_RANGE, Rating, Reader, ShelfItem
from bookrec.readers.repository import touch_many


@dataclass(frozen=True)
class BigTable:
    """Where a big file goes: the table, the file column stored as a value, the time column."""

    spec: BlockSpec
    table: Table
    value_column: str | None  # file column stored under the same name (ratings: rating)
    time_column: str  # table column that receives the file's optional `timestamp`

    @property
    def name(self) -> str:
        return self.table.name


RATINGS_TABLE = BigTable(RATINGS, table_of(Rating), "rating", "rated_at")
SHELF_TABLE = BigTable(TO_READ, table_of(ShelfItem), None, "added_at")

# binary COPY field types: numpy big-endian dtype and byte width, per table column
_PG_TYPES = {
    "reader_id": ">i4",
    "book_id": ">i4",
    "rating": ">i2",
    "rated_at": ">i8",
    "added_at": ">i8",
}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


class ReaderMap:
    """Maps data set user ids to reader ids, allocating ids for readers seen the first time.

    New readers are held until `flush()` inserts them in one batch, so rows can be mapped
    while a COPY is streaming on the same connection.
    """

    def __init__(self, connection: Connection, dataset_id: int) -> None:
        self._connection = connection
        self._dataset_id = dataset_id
        if connection.dialect.name == "postgresql":
            # no one else may create readers while ids are allocated here
            connection.execute(text("LOCK TABLE readers IN SHARE ROW EXCLUSIVE MODE"))
        rows = connection.execute(
            select(Reader.external_id, Reader.reader_id)
            .where(Reader.external_id.is_not(None))
            .order_by(Reader.external_id)
        ).all()
        self._external = np.asarray([r[0] for r in rows], dtype=np.int64)
        self._reader = np.asarray([r[1] for r in rows], dtype=np.int64)
        highest = connection.execute(text("SELECT coalesce(max(reader_id), 0) FROM readers"))
        self._next_id = int(highest.scalar_one()) + 1
        #: readers with a smaller id existed before this import
        self.first_new_id = self._next_id
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._dense: np.ndarray | None = None
        self._dense_failed = False
        self.created = 0

    def resolve(self, external_ids: np.ndarray) -> np.ndarray:
        """Reader ids for these external ids, allocating ids for new readers."""
        if self._dense_usable(external_ids):
            assert self._dense is not None
            found = self._dense[external_ids]
            if (found == 0).any():
                self._allocate(np.unique(external_ids[found == 0]))
                found = self._dense[external_ids]
            return np.asarray(found)
        unique = np.unique(external_ids)
        position = np.searchsorted(self._external, unique)
        known = position < len(self._external)
        known[known] = self._external[position[known]] == unique[known]
        self._allocate(unique[~known])
        return self._reader[np.searchsorted(self._external, external_ids)]

    def _dense_usable(self, external_ids: np.ndarray) -> bool:
        """Small ids map through a flat table (a gather) instead of a search per row."""
        if not len(external_ids):
            return False
        highest = max(
            int(external_ids.max()), int(self._external[-1]) if len(self._external) else 0
        )
        if int(external_ids.min()) < 0 or highest >= DENSE_LIMIT:
            self._dense = None
            self._dense_failed = True
            return False
        if self._dense_failed:
            return False
        if self._dense is None or len(self._dense) <= highest:
            self._dense = np.zeros(highest + 1 + highest // 4, dtype=np.int64)
            self._dense[self._external] = self._reader
        return True

    def _allocate(self, missing: np.ndarray) -> None:
        if not len(missing):
            return
        ids = np.arange(self._next_id, self._next_id + len(missing), dtype=np.int64)
        self._next_id += len(missing)
        self._pending.append((missing, ids))
        merged_external = np.concatenate([self._external, missing])
        merged_reader = np.concatenate([self._reader, ids])
        order = np.argsort(merged_external, kind="stable")
        self._external, self._reader = merged_external[order], merged_reader[order]
        if self._dense is not None:
            self._dense[missing] = ids

    def flush(self) -> None:
        """Insert the readers allocated since the last flush."""
        if not self._pending:
            return
        external = np.concatenate([p[0] for p in self._pending])
        ids = np.concatenate([p[1] for p in self._pending])
        self._pending.clear()
        now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
        versions = np.random.default_rng(secrets.randbits(128)).integers(
            0, ACTIVITY_VERSION_START_RANGE, len(ids), dtype=np.int64
        )
        rows = list(zip(ids.tolist(), external.tolist(), versions.tolist(), strict=True))
        columns = "reader_id, external_id, activity_version, dataset_id, created_at"
        if self._connection.dialect.name == "postgresql":
            raw = self._connection.connection.driver_connection
            tail = f"\t{self._dataset_id}\t{now}\n"
            data = "".join(
                f"{reader}\t{external}\t{version}{tail}" for reader, external, version in rows
            )
            with raw.cursor() as cursor:  # type: ignore[union-attr]
                with cursor.copy(f"COPY readers ({columns}) FROM STDIN") as copy:
                    copy.write(data)
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('readers', 'reader_id'), %s)",
                    (self._next_id - 1,),
                )
        else:
            self._connection.exec_driver_sql(
                f"INSERT INTO readers ({columns}) VALUES (?, ?, ?, ?, ?)",
                [(r, e, v, self._dataset_id, now) for r, e, v in rows],
            )
        self.created += len(ids)

    def existing(self, reader_ids: np.ndarray) -> np.ndarray:
        """The distinct readers among `reader_ids` that existed before this import."""
        unique = np.unique(reader_ids)
        return unique[unique < self.first_new_id]


def _key_order(readers: ReaderMap, block: Block) -> tuple[np.ndarray, np.ndarray]:
    """Reader ids of a block and the stable order that sorts its rows by (reader, book).

    Rows in key order make the key cheap to maintain (SQLite) or to build (PostgreSQL sorts
    presorted input in one pass); a stable sort keeps a repeated pair's rows in file order.
    """
    reader_ids = readers.resolve(block.columns["user_id"])
    return reader_ids, np.argsort(_pair_key(reader_ids, block.columns["book_id"]), kind="stable")


def _pair_key(reader_ids: np.ndarray, book_ids: np.ndarray) -> np.ndarray:
    """One int64 per (reader, book) pair, ordered as the pairs: both ids fit in 31 bits (int4
    columns), and one key sorts and compares much faster than two columns."""
    key: np.ndarray = (reader_ids << 32) | book_ids
    return key


def _row_columns(target: BigTable, source: BlockFile) -> list[tuple[str, str | None]]:
    """(table column, file column or None for NULL) in the order rows are written."""
    columns: list[tuple[str, str | None]] = [("reader_id", "user_id"), ("book_id", "book_id")]
    if target.value_column:
        columns.append((target.value_column, target.value_column))
    timestamp = "timestamp" if "timestamp" in source.present else None
    columns.append((target.time_column, timestamp))
    return columns


def _on_conflict(table: str, updates: list[str], differs: str) -> str:
    """The upsert's conflict action: update the non-key columns, only where one differs
    (`differs`: SQLite's NULL-aware "IS NOT", PostgreSQL's "IS DISTINCT FROM"), so an
    unchanged row is neither rewritten nor counted as changed."""
    if not updates:
        return "DO NOTHING"
    return (
        "DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updates)
        + " WHERE "
        + " OR ".join(f"{table}.{c} {differs} excluded.{c}" for c in updates)
    )


class SqliteWriter:
    """Upserts each block inside the import's transaction: packed into one JSON array when
    its columns fit 63 bits a row, else with executemany."""

    def __init__(
        self, connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
    ) -> None:
        self._connection = connection
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._readers = readers
        self._touched: list[np.ndarray] = []
        self._columns = [(c, f) for c, f in _row_columns(target, source) if f is not None]
        names = [c for c, _ in self._columns]
        into = f"INSERT INTO {target.name} ({', '.join(names)})"
        upsert = (
            f"ON CONFLICT (reader_id, book_id) {_on_conflict(target.name, names[2:], 'IS NOT')}"
        )
        self._sql = f"{into} VALUES ({', '.join('?' * len(names))}) {upsert}"
        # column i of a packed row is ((value >> shift_i) & mask_i) + low_i, bound per block;
        # "WHERE true" tells SQLite's parser that ON CONFLICT is the upsert's, not a join's
        unpack = ", ".join(
            f"((value >> ?{3 * i + 2}) & ?{3 * i + 3}) + ?{3 * i + 4}" for i in range(len(names))
        )
        self._packed_sql = f"{into} SELECT {unpack} FROM json_each(?1) WHERE true {upsert}"
        self._packs = _has_json_each(self._cursor)
        self.written = 0
        self.rows = 0

    def write(self, block: Block) -> None:
        readers, order = _key_order(self._readers, block)
        columns = [readers[order]] + [block.columns[f][order] for _, f in self._columns[1:] if f]
        self._readers.flush()
        packed = _packed_rows(columns) if self._packs else None
        if packed is None:
            self._cursor.executemany(self._sql, zip(*(c.tolist() for c in columns), strict=True))
        else:
            self._cursor.execute(self._packed_sql, packed)
        changed = max(self._cursor.rowcount, 0)
        if changed:
            self._touched.append(self._readers.existing(readers))
        self.written += changed
        self.rows += len(block)

    def finish(self) -> None:
        self._cursor.close()
        if self._touched:
            touch_many(self._connection, np.concatenate(self._touched))

    def abort(self, error: BaseException) -> None:
        self._cursor.close()


def _has_json_each(cursor: Any) -> bool:
    """Whether this SQLite has `json_each` (built in since 3.38; earlier, a compile option)."""
    try:
        cursor.execute("SELECT count(*) FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError:  # "no such table: json_each"
        return False
    return True


def _packed_rows(columns: list[np.ndarray]) -> tuple[Any, ...] | None:
    """Parameters of `SqliteWriter`'s packed statement: a JSON array of one integer a row
    (each column less its smallest value, side by side in its bits, the first highest) and
    each column's shift, mask and smallest value; None when they need more than 63 bits."""
    if not len(columns[0]):
        return None
    lows = [int(c.min()) for c in columns]
    widths = [(int(c.max()) - low).bit_length() for c, low in zip(columns, lows, strict=True)]
    if sum(widths) > 63:
        return None
    packed = np.zeros(len(columns[0]), dtype=np.int64)
    unpack: list[int] = []
    shift = sum(widths)
    for column, width, low in zip(columns, widths, lows, strict=True):
        shift -= width
        packed |= (column - low) << shift
        unpack += [shift, (1 << width) - 1, low]
    return ("[" + ",".join(map(str, packed.tolist())) + "]", *unpack)


class PostgresWriter:
    """Binary COPY of mapped rows: straight into an empty table, or via a staging table."""

    def __init__(
        self, connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
    ) -> None:
        from psycopg.copy import QueuedLibpqWriter

        self._connection = connection
        self._target = target
        self._readers = readers
        self._touched: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []  # each block's (reader, book) keys, in key order
        self._columns = _row_columns(target, source)
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._cursor.execute(f"LOCK TABLE {target.name} IN SHARE ROW EXCLUSIVE MODE")
        self._cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {target.name})")
        self.direct = not self._cursor.fetchone()[0]
        names = ", ".join(c for c, _ in self._columns)
        if self.direct:
            self._cursor.execute(f"LOCK TABLE {target.name} IN ACCESS EXCLUSIVE MODE")
            self._dropped = [
                constraint
                for constraint in target.table.constraints
                if isinstance(
                    constraint, PrimaryKeyConstraint | ForeignKeyConstraint | CheckConstraint
                )
            ]
            # foreign keys first: nothing else depends on them; the key last
            self._dropped.sort(key=lambda c: c is target.table.primary_key)
            for constraint in self._dropped:
                connection.execute(DropConstraint(constraint))
            # emptied in this transaction, the table can take frozen rows: no second pass
            # over fresh tuples to set their hint bits when the key is built
            self._cursor.execute(f"TRUNCATE {target.name}")
            destination = target.name
        else:
            destination = f"stage_{target.name}"
            columns = ", ".join(f"{c} {_sql_type(c)}" for c, _ in self._columns)
            self._cursor.execute(f"CREATE TEMP TABLE {destination} ({columns}) ON COMMIT DROP")
        # the queued writer sends data from a thread while the next block is parsed
        freeze = ", FREEZE" if self.direct else ""
        self._copy_context = self._cursor.copy(
            f"COPY {destination} ({names}) FROM STDIN (FORMAT binary{freeze})",
            writer=QueuedLibpqWriter(self._cursor),
        )
        self._copy = self._copy_context.__enter__()
        self._copy.write(_COPY_HEADER)
        self.written = 0
        self.rows = 0

    def write(self, block: Block) -> None:
        readers, order = _key_order(self._readers, block)
        values = {name: column[order] for name, column in block.columns.items()}
        values["user_id"] = readers[order]
        fields: list[tuple[str, Any]] = [("count", ">i2")]
        for column, file_column in self._columns:
            fields.append((f"{column}_length", ">i4"))
            if file_column is not None:
                fields.append((column, _PG_TYPES[column]))
        rows = np.empty(len(block), dtype=np.dtype(fields))
        rows["count"] = len(self._columns)
        for column, file_column in self._columns:
            if file_column is None:
                rows[f"{column}_length"] = -1  # NULL
                continue
            rows[f"{column}_length"] = np.dtype(_PG_TYPES[column]).itemsize
            rows[column] = values[file_column]
        self._copy.write(rows.tobytes())
        if self.direct:  # an empty table: every reader in the file gains rows
            self._touched.append(self._readers.existing(readers))
        else:
            self._keys.append(_pair_key(values["user_id"], values["book_id"]))
        self.rows += len(block)

    def abort(self, error: BaseException) -> None:
        """End the COPY with an error so the connection can roll back.

        The server gets only the error's type: it closes the connection on a CopyFail message
        over 10,000 bytes, and an import error may quote a huge field.
        """
        aborted = RuntimeError(f"import aborted: {type(error).__name__}")
        self._copy_context.__exit__(RuntimeError, aborted, None)
        self._cursor.close()

    def finish(self) -> None:
        self._copy.write(_COPY_TRAILER)
        self._copy_context.__exit__(None, None, None)
        self._readers.flush()
        if self.direct:
            self._restore_constraints()
            if self._touched:
                touch_many(self._connection, np.concatenate(self._touched))
        else:
            self._merge()
        self._cursor.close()

    def _restore_constraints(self) -> None:
        from psycopg.errors import UniqueViolation

        name = self._target.name
        self._cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        self.written = self.rows
        for constraint in reversed(self._dropped):
            ddl = str(AddConstraint(constraint).compile(self._connection))
            if constraint is self._target.table.primary_key:
                self._cursor.execute("SAVEPOINT add_key")
                try:
                    self._cursor.execute(ddl)
                except UniqueViolation:
                    # the file names a (user, book) pair twice: keep the last row, as SQLite does
                    self._cursor.execute("ROLLBACK TO SAVEPOINT add_key")
                    self._cursor.execute(
                        f"DELETE FROM {name} a USING {name} b WHERE a.reader_id = b.reader_id "
                        "AND a.book_id = b.book_id AND a.ctid < b.ctid"
                    )
                    self.written -= self._cursor.rowcount
                    self._cursor.execute(ddl)
                self._cursor.execute("RELEASE SAVEPOINT add_key")
            else:
                self._cursor.execute(ddl + " NOT VALID")

    def _merge(self) -> None:
        target, stage = self._target.name, f"stage_{self._target.name}"
        names = [c for c, f in self._columns if f is not None]
        values = names[2:]
        source = stage
        if _has_repeated_pair(self._keys):
            # the file names a (user, book) pair twice: keep the last row, as SQLite does
            source = (
                f"(SELECT DISTINCT ON (reader_id, book_id) {', '.join(names)} FROM {stage} "
                "ORDER BY reader_id, book_id, ctid DESC)"
            )
        # only new or changed rows reach the upsert (found by one hash join), in key order:
        # probing the key for each of millions of unchanged rows was most of a re-import
        differs = " OR ".join(f"r.{c} IS DISTINCT FROM s.{c}" for c in values)
        new_or_changed = (
            f"SELECT {', '.join(f's.{c}' for c in names)} FROM {source} s "
            f"LEFT JOIN {target} r USING (reader_id, book_id) "
            f"WHERE r.reader_id IS NULL{' OR ' + differs if differs else ''} "
            "ORDER BY s.reader_id, s.book_id"
        )
        conflict = _on_conflict(target, values, "IS DISTINCT FROM")
        # the rows inserted or changed, and their readers' activity versions moved, at once
        self._cursor.execute(
            f"WITH changed AS (INSERT INTO {target} ({', '.join(names)}) {new_or_changed} "
            f"ON CONFLICT (reader_id, book_id) {conflict} RETURNING reader_id), "
            "touched AS (UPDATE readers SET activity_version = activity_version + 1 "
            "WHERE reader_id IN (SELECT reader_id FROM changed) RETURNING 1) "
            "SELECT count(*) FROM changed"
        )
        self.written = int(self._cursor.fetchone()[0])
        self._cursor.execute(f"DROP TABLE {stage}")


def _has_repeated_pair(keys: list[np.ndarray]) -> bool:
    """Whether any (reader, book) key occurs twice across blocks each sorted by key (a
    stable sort merges those runs in about one pass)."""
    if not keys:
        return False
    merged = np.sort(np.concatenate(keys), kind="stable")
    return bool((merged[1:] == merged[:-1]).any())


def _sql_type(column: str) -> str:
    return {">i4": "integer", ">i2": "smallint", ">i8": "bigint"}[_PG_TYPES[column]]


def make_writer(
    connection: Connection, target: BigTable, source: BlockFile, readers: ReaderMap
) -> SqliteWriter | PostgresWriter:
    if connection.dialect.name == "postgresql":
        return PostgresWriter(connection, target, source, readers)
    return SqliteWriter(connection, target, source, readers)
