"""SQL of reader activity: histories and id lookups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, select

from bookrec.accounts.models import Reader
from bookrec.interactions.models import Rating, ShelfItem
from bookrec.recsys.data import ReaderHistory


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
