"""The contract every recommender keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.data import Catalog, Filters, Interactions, ReaderHistory


@dataclass(frozen=True)
class Recommendation:
    book_id: int
    score: float


@runtime_checkable
class Recommender(Protocol):
    """fit / recommend / similar / explain / save / load (PRODUCT §4)."""

    algo: ClassVar[str]
    config: Any  # the pydantic model of its hyper-parameters

    def fit(self, interactions: Interactions, catalog: Catalog) -> Recommender: ...

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
    ) -> list[Recommendation]: ...

    def similar(
        self, book_id: int, k: int, filters: Filters | None = None
    ) -> list[Recommendation]: ...

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, directory: Path) -> Recommender: ...


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores (best first) among allowed, finite entries."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores)
    if allowed is not None:
        valid &= allowed
    candidates = np.flatnonzero(valid)
    if len(candidates) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    # ties break on the lower index, so results are deterministic
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]


def allowed_mask(
    catalog: Catalog,
    history: ReaderHistory | None,
    exclude: np.ndarray | None,
    filters: Filters | None,
) -> np.ndarray:
    """Items a list may show: pass the filters, not already in the history, not excluded."""
    mask = (
        filters.allowed(catalog)
        if filters and not filters.is_empty()
        else np.ones(len(catalog.items), dtype=bool)
    )
    for book_ids in (history.book_ids if history is not None else None, exclude):
        if book_ids is not None and len(book_ids):
            index = catalog.items.index(book_ids)
            mask[index[index >= 0]] = False
    return mask


class ScoringRecommender:
    """recommend / recommend_batch / similar for models that score every item for a history.

    A model implements `fit`, `scores` (a batch of histories -> item scores), `item_scores`
    (one item -> similarity to every item), `explain`, `save` and `load`; this class turns
    scores into filtered, de-duplicated top-k lists, one reader or many at a time.
    """

    algo: ClassVar[str]
    config_class: ClassVar[type[Any]]
    config: Any
    catalog: Catalog | None

    # -- to implement ------------------------------------------------------------------------
    def fit(self, interactions: Interactions, catalog: Catalog) -> ScoringRecommender:
        raise NotImplementedError

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """Short human sentences saying why `book_id` suits this history."""
        raise NotImplementedError

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the model as an artifact; returns its manifest."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> ScoringRecommender:
        raise NotImplementedError

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """Scores (n_histories x n_items, float32) for histories given as rows over the catalog."""
        raise NotImplementedError

    def item_scores(self, item_index: int) -> np.ndarray:
        """Similarity of item `item_index` to every item (n_items,); the item itself is ignored."""
        raise NotImplementedError

    # -- provided ----------------------------------------------------------------------------
    def require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError(f"the {self.algo} model is not fitted")
        return self.catalog

    def history_row(self, history: ReaderHistory) -> sp.csr_matrix:
        """One reader's history as a 1 x n_items row of ratings (unknown books dropped)."""
        catalog = self.require_catalog()
        index = catalog.items.index(history.book_ids)
        keep = index >= 0
        return sp.csr_matrix(
            (
                np.asarray(history.ratings, np.float32)[keep],
                (np.zeros(int(keep.sum()), int), index[keep]),
            ),
            shape=(1, len(catalog.items)),
        )

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
    ) -> list[Recommendation]:
        catalog = self.require_catalog()
        scores = self.scores(self.history_row(history))[0]
        allowed = allowed_mask(catalog, history, exclude, filters)
        best = top_k(scores, k, allowed)
        return [Recommendation(int(catalog.items.ids[i]), float(scores[i])) for i in best]

    def recommend_batch(
        self,
        histories: sp.csr_matrix,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
        chunk: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for each row (n x k; index -1 where fewer exist).

        Items in a row's history or `exclude` row never appear; `allowed` masks items for all.
        """
        n = histories.shape[0]
        indices = np.full((n, k), -1, dtype=np.int64)
        values = np.full((n, k), -np.inf, dtype=np.float32)
        histories = histories.tocsr()
        exclude = exclude.tocsr() if exclude is not None else None
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            scores = np.array(self.scores(histories[start:stop]), dtype=np.float32, copy=True)
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            for matrix in (histories, exclude):
                if matrix is None:
                    continue
                block = matrix[start:stop].tocoo()
                scores[block.row, block.col] = -np.inf
            take = min(k, scores.shape[1])
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            part_scores = np.take_along_axis(scores, part, axis=1)
            # best first; equal scores go to the lower item index, as in top_k
            order = np.lexsort((part, -part_scores), axis=1)
            best = np.take_along_axis(part, order, axis=1)
            best_scores = np.take_along_axis(part_scores, order, axis=1)
            best[~np.isfinite(best_scores)] = -1
            indices[start:stop, :take] = best
            values[start:stop, :take] = best_scores
        return indices, values

    def similar(self, book_id: int, k: int, filters: Filters | None = None) -> list[Recommendation]:
        catalog = self.require_catalog()
        index = int(catalog.items.index([book_id])[0])
        if index < 0:
            return []
        scores = np.asarray(self.item_scores(index), dtype=np.float64).copy()
        scores[index] = -np.inf
        scores[scores <= 0] = -np.inf  # nothing in common is not "similar"
        allowed = (
            filters.allowed(catalog) if filters is not None and not filters.is_empty() else None
        )
        best = top_k(scores, k, allowed)
        return [Recommendation(int(catalog.items.ids[i]), float(scores[i])) for i in best]
