"""Dialect-aware INSERT ... ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

#: from this many rows PostgreSQL gets them by COPY into a temporary table and one
#: INSERT ... SELECT: a multi-row VALUES costs psycopg a placeholder rewrite per batch (its
#: query cache never hits as the batch's text changes), which dominated a catalogue import
COPY_FROM_ROWS = 1000
_staging_names = itertools.count()


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
    touch: dict[str, Any] | None = None,
    batch_size: int = 2000,
) -> int:
    """Insert rows; on a key conflict update `update` columns only where a value differs.

    Rows whose values are all unchanged are left untouched, so re-importing the same data
    writes nothing. `touch` sets extra columns (e.g. `updated_at`) on rows that do change.
    Returns the number of rows inserted or changed.
    """
    if not rows:
        return 0
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    columns = list(rows[0])
    update = [c for c in (update if update is not None else columns) if c not in keys]
    statement = dialect.insert(table)
    if update:
        excluded = statement.excluded
        changed = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in update))
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={**{c: excluded[c] for c in update}, **(touch or {})},
            where=changed,
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    if dialect is postgresql and len(rows) >= COPY_FROM_ROWS:
        return _copy_upsert(connection, table, rows, columns, statement)
    # One statement compiled once, run over the rows in batches (SQLAlchemy's
    # "insertmanyvalues": a multi-row VALUES per batch, without compiling each batch anew).
    # RETURNING yields exactly the rows inserted or changed; rowcount is unreliable here.
    returning = statement.returning(literal(1))
    written = 0
    for start in range(0, len(rows), batch_size):
        written += len(connection.execute(returning, list(rows[start : start + batch_size])).all())
    return written


def _copy_upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    columns: list[str],
    statement: Insert,
) -> int:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT ... SELECT with the
    same ON CONFLICT clause; the temporary table is dropped before returning."""
    staging = Table(
        f"upsert_{table.name}_{next(_staging_names)}",
        MetaData(),
        *(Column(name, table.c[name].type) for name in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    staging.create(connection)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        names = ", ".join(f'"{name}"' for name in columns)
        with cursor.copy(f'COPY "{staging.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
    finally:
        cursor.close()
    from_staging = statement.from_select(columns, select(*staging.c))
    written = len(connection.execute(from_staging.returning(literal(1))).all())
    staging.drop(connection)
    return written
