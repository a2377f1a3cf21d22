"""What a worker knows of the catalogue beyond its model: books added and deleted since the
model was trained.

The view is rebuilt when the served model or the catalogue stamp (`BookCards.stamp_of`: book
count and newest `updated_at`, one indexed aggregate) changes: by the refresher thread on its
card ticks, by a similar-books request (which checks the stamp), and by the worker that wrote
a book, right after its transaction commits. Requests only read it (an attribute).

Added books get cold-start vectors (`recsys.coldstart`) so that they are similar to other
books and blended into personal lists at once; deleted books leave every answer through the
book cards, and `signature` keys cached lists so none cached before a change is served after.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, select

from bookrec.catalog import repository as catalog_sql
from bookrec.catalog.models import Book
from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.recsys.coldstart import BookText, ColdStartIndex
from bookrec.recsys.data import Catalog
from bookrec.serving.books import BookCards
from bookrec.serving.loaded import LoadedModel


@dataclass(frozen=True)
class AddedBooks:
    index: ColdStartIndex  # over the model's catalogue, row for row
    ids: np.ndarray  # book ids the model has not seen, sorted
    vectors: sp.csr_matrix  # their cold-start vectors, aligned
    all_vectors: sp.csr_matrix  # the catalogue's vectors, then these: one row space for both

    def row_of(self, book_id: int) -> int | None:
        position = int(np.searchsorted(self.ids, book_id))
        if position < len(self.ids) and int(self.ids[position]) == book_id:
            return position
        return None

    def vectors_of(
        self, catalog: Catalog, book_ids: np.ndarray
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """(those of `book_ids` that have a vector, their vectors, in that order): books of
        the model's catalogue and added books alike."""
        book_ids = np.asarray(book_ids, dtype=np.int64)
        known = catalog.items.index(book_ids)
        position = np.minimum(np.searchsorted(self.ids, book_ids), len(self.ids) - 1)
        added = (known < 0) & (self.ids[position] == book_ids)
        rows = np.where(known >= 0, known, np.where(added, len(catalog.items) + position, -1))
        keep = rows >= 0
        return book_ids[keep], self.all_vectors[rows[keep]]


@dataclass(frozen=True)
class CatalogueView:
    """The catalogue as one worker sees it, relative to the model it serves."""

    model_number: int
    stamp: tuple[Any, ...]
    added: AddedBooks | None  # None: every live book is in the model's catalogue
    gone: frozenset[int]  # the model's books deleted since it was trained

    @property
    def signature(self) -> str:
        """ "" while the catalogue is the model's, else a digest of the stamp: a cached list
        is keyed with it, so one cached before any addition or deletion is never served
        after it (and the lists of a catalogue unchanged since training keep their keys)."""
        if self.added is None and not self.gone:
            return ""
        return hashlib.blake2b(repr(self.stamp).encode(), digest_size=6).hexdigest()


class CatalogueChanges:
    """This worker's `CatalogueView` for the model it serves (thread-safe)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._lock = threading.Lock()
        self._view: CatalogueView | None = None
        self._index: tuple[int, ColdStartIndex] | None = None

    def for_model(self, model_number: int) -> CatalogueView | None:
        """The view if it is of this model (an attribute read; None until the refresher has
        caught up with a model switch, a tick away)."""
        view = self._view
        return view if view is not None and view.model_number == model_number else None

    def refresh(self, loaded: LoadedModel | None, cards: BookCards) -> CatalogueView | None:
        """The view for this model and these cards, rebuilt when either changed."""
        if loaded is None or not cards.stamp:
            return None
        view = self._view
        if view is not None and view.model_number == loaded.number and view.stamp == cards.stamp:
            return view
        with self._lock:
            view = self._view
            if view is not None and (view.model_number, view.stamp) == (loaded.number, cards.stamp):
                return view
            catalog = loaded.model.require_catalog()
            live = np.sort(np.fromiter(cards.cards, dtype=np.int64, count=len(cards)))
            new_ids = live[catalog.items.index(live) < 0]
            model_ids = np.asarray(catalog.items.ids, dtype=np.int64)
            gone = frozenset(int(b) for b in model_ids[~np.isin(model_ids, live)])
            added = None
            if len(new_ids):
                index = self._index_for(loaded.number, catalog)
                with unit_of_work(self.sessions) as session:
                    added = _load_added(session.connection(), new_ids, index)
                if not len(added.ids):  # all deleted between the cards and that read
                    added = None
            view = CatalogueView(loaded.number, cards.stamp, added, gone)
            self._view = view
            return view

    def _index_for(self, model_number: int, catalog: Catalog) -> ColdStartIndex:
        """The cold-start index of the model's catalogue, built once per model and only
        when a book is new to it."""
        if self._index is None or self._index[0] != model_number:
            self._index = (model_number, ColdStartIndex(catalog))
        return self._index[1]


def _load_added(connection: Connection, new_ids: np.ndarray, index: ColdStartIndex) -> AddedBooks:
    ids = [int(b) for b in new_ids]
    rows = {
        int(row.book_id): row
        for row in connection.execute(
            select(Book.book_id, Book.title, Book.authors, Book.series).where(Book.book_id.in_(ids))
        )
    }
    kept = [book for book in ids if book in rows]  # deleted between the cards and this read
    tags = catalog_sql.tags_of_books(connection, kept, limit=50)
    texts = [
        BookText(
            title=rows[book].title,
            authors=[a for a in (rows[book].authors or "").split(",") if a.strip()],
            series=rows[book].series or "",
            tags=tags.get(book, []),
        )
        for book in kept
    ]
    vectors = index.vectorise(texts)
    everything = sp.vstack([index.vectors, vectors], format="csr")
    return AddedBooks(index, np.asarray(kept, dtype=np.int64), vectors, everything)
