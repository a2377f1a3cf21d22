"""Recommendations for many readers at once (`bookrec recommend --batch`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import Recommender
from bookrec.recsys.data import Interactions, ReaderHistory


def batch_recommend(
    model: Recommender,
    interactions: Interactions,
    reader_ids: np.ndarray,
    k: int,
    shelf: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[int, list[tuple[int, float]]]]:
    """Yield (position in reader_ids, [(book_id, score)...]) from each reader's live history.

    A reader id of -1 (unknown reader) gets the cold-start list.
    """
    matrix = interactions.matrix().tocsr()
    rows = interactions.users.index(reader_ids)
    shelf_matrix = None
    if shelf is not None and len(shelf[0]):
        shelf_rows = interactions.users.index(shelf[0])
        shelf_items = interactions.items.index(shelf[1])
        keep = (shelf_rows >= 0) & (shelf_items >= 0)
        shelf_matrix = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (shelf_rows[keep], shelf_items[keep])),
            shape=matrix.shape,
        )
    book_ids = interactions.items.ids
    for position, row in enumerate(rows):
        if row < 0:
            history, exclude = ReaderHistory.empty(), None
        else:
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            history = ReaderHistory(book_ids[matrix.indices[start:end]], matrix.data[start:end])
            exclude = None
            if shelf_matrix is not None:
                exclude = book_ids[
                    shelf_matrix.indices[shelf_matrix.indptr[row] : shelf_matrix.indptr[row + 1]]
                ]
        picks = model.recommend(history, k, exclude=exclude)
        yield position, [(r.book_id, r.score) for r in picks]
