"""Recommendations for many readers at once (`bookrec recommend --batch`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.data import Catalog, Interactions


def history_matrix(
    interactions: Interactions, catalog: Catalog, reader_ids: np.ndarray
) -> sp.csr_matrix:
    """Rows of the readers' ratings over the catalog (an unknown reader id: an empty row)."""
    rows = interactions.users.index(reader_ids)
    items = catalog.items.index(interactions.items.ids[interactions.item_index])
    full = sp.csr_matrix(
        (interactions.rating, (interactions.user_index, items)),
        shape=(len(interactions.users), len(catalog.items)),
        dtype=np.float32,
    )
    picked = full[np.maximum(rows, 0)]
    picked = picked.multiply((rows >= 0)[:, None].astype(np.float32)).tocsr()
    picked.eliminate_zeros()
    return picked


def shelf_matrix(
    reader_ids: np.ndarray, catalog: Catalog, shelf: tuple[np.ndarray, np.ndarray]
) -> sp.csr_matrix:
    """Rows marking each reader's to-read shelf, never recommended back to them."""
    shelf_readers, shelf_books = shelf
    position = {int(r): i for i, r in enumerate(reader_ids.tolist()) if r >= 0}
    rows = np.asarray([position.get(int(r), -1) for r in shelf_readers], dtype=np.int64)
    items = catalog.items.index(shelf_books)
    keep = (rows >= 0) & (items >= 0)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], items[keep])),
        shape=(len(reader_ids), len(catalog.items)),
    )


def batch_recommend(
    model: ScoringRecommender,
    interactions: Interactions,
    reader_ids: np.ndarray,
    k: int,
    shelf: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(book ids, scores), each readers x k, from every reader's live history.

    Book id -1 pads a row that has fewer than k candidates. A reader id of -1 (unknown
    reader) gets the cold-start list.
    """
    catalog = model.require_catalog()
    histories = history_matrix(interactions, catalog, reader_ids)
    exclude = shelf_matrix(reader_ids, catalog, shelf) if shelf is not None else None
    indices, scores = model.recommend_batch(histories, k, exclude=exclude)
    book_ids = np.where(indices >= 0, catalog.items.ids[np.maximum(indices, 0)], -1)
    return book_ids, scores
