"""Dialect-aware INSERT ... ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, literal, or_
from sqlalchemy.dialects import postgresql, sqlite


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
    # One statement compiled once, run over the rows in batches (SQLAlchemy's
    # "insertmanyvalues": a multi-row VALUES per batch, without compiling each batch anew).
    # RETURNING yields exactly the rows inserted or changed; rowcount is unreliable here.
    returning = statement.returning(literal(1))
    written = 0
    for start in range(0, len(rows), batch_size):
        written += len(connection.execute(returning, list(rows[start : start + batch_size])).all())
    return written
