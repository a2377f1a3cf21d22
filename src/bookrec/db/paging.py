"""One page of a query's rows and how many rows the whole query has (every paginated list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Connection, Row, Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
Columns = TypeVarTuple("Columns")


def _count(executor: Session | Connection, query: Select[*tuple[Any, ...]]) -> int:
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return int(executor.scalar(counted) or 0)


def page_of_rows(
    executor: Session | Connection, query: Select[*Columns], offset: int, limit: int
) -> tuple[Sequence[Row[*Columns]], int]:
    """Rows `offset` to `offset + limit` of an ordered `query`, and its total row count."""
    rows = executor.execute(query.offset(max(offset, 0)).limit(max(limit, 0))).all()
    return rows, _count(executor, query)


def page_of_objects(
    session: Session, query: Select[T], offset: int, limit: int
) -> tuple[list[T], int]:
    """Like `page_of_rows` for a query of one ORM entity: the objects, and the total."""
    objects = session.scalars(query.offset(max(offset, 0)).limit(max(limit, 0))).all()
    return list(objects), _count(session, query)
