"""Books added to the catalogue since the served model was trained: similar books at once.

Every worker rebuilds its view when the catalogue stamp (`BookCards.stamp_of`: book count
and newest `updated_at`, one indexed aggregate) or the served model changes, so a book an
admin adds through any worker is answered by all of them on their next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, select

from bookrec.catalog import repository as catalog_sql
from bookrec.catalog.models import Book
from bookrec.recsys.coldstart import BookText, ColdStartIndex
from bookrec.recsys.data import Catalog


@dataclass(frozen=True)
class AddedBooks:
    index: ColdStartIndex
    ids: np.ndarray  # book ids the model has not seen, sorted
    vectors: sp.csr_matrix  # their cold-start vectors, aligned

    def row_of(self, book_id: int) -> int | None:
        position = int(np.searchsorted(self.ids, book_id))
        if position < len(self.ids) and int(self.ids[position]) == book_id:
            return position
        return None


class Additions:
    """This worker's added books, for the model it serves (thread-safe, rebuilt on change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: tuple[int, ColdStartIndex] | None = None
        self._added: tuple[tuple[Any, ...], AddedBooks] | None = None

    def current(
        self, connection: Connection, model_number: int, catalog: Catalog, stamp: tuple[Any, ...]
    ) -> AddedBooks:
        key = (model_number, *stamp)
        with self._lock:
            if self._added is not None and self._added[0] == key:
                return self._added[1]
            if self._index is None or self._index[0] != model_number:
                self._index = (model_number, ColdStartIndex(catalog))
            index = self._index[1]
            added = _load_added(connection, catalog, index)
            self._added = (key, added)
            return added


def _load_added(connection: Connection, catalog: Catalog, index: ColdStartIndex) -> AddedBooks:
    rows = connection.execute(
        select(Book.book_id, Book.title, Book.authors, Book.series)
        .where(Book.deleted_at.is_(None))
        .order_by(Book.book_id)
    ).all()
    ids = np.asarray([row.book_id for row in rows], dtype=np.int64)
    unseen = catalog.items.index(ids) < 0
    new_rows = [row for row, new in zip(rows, unseen, strict=True) if new]
    tags = catalog_sql.tags_of_books(connection, [row.book_id for row in new_rows], limit=50)
    texts = [
        BookText(
            title=row.title,
            authors=[a for a in (row.authors or "").split(",") if a.strip()],
            series=row.series or "",
            tags=tags.get(row.book_id, []),
        )
        for row in new_rows
    ]
    return AddedBooks(index, ids[unseen], index.vectorise(texts))
