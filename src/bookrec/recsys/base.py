"""The contract every recommender keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.data import Catalog, Filters, Interactions, ReaderHistory
from bookrec.recsys.parallel import for_row_blocks

#: The lowest rating a reason may cite ("because you rated X 4★"): a reason to read more
#: is something the reader liked, never a mediocre rating. 0 marks a read without a rating.
REASON_MIN_RATING = 4.0


def citable(ratings: np.ndarray) -> np.ndarray:
    """Which history ratings a reason may name: liked ones, and reads without a rating."""
    ratings = np.asarray(ratings)
    return (ratings >= REASON_MIN_RATING) | (ratings <= 0)


def because(
    catalog: Catalog,
    index: np.ndarray,
    ratings: np.ndarray,
    contributions: np.ndarray,
    target: int,
    suffix: str = "",
    limit: int = 3,
) -> list[str]:
    """Sentences naming the liked history books that add most (and positively) to target's
    score."""
    useful = (contributions > 0) & (index != target) & citable(ratings)
    index, ratings, contributions = index[useful], ratings[useful], contributions[useful]
    order = np.lexsort((index, -contributions))[:limit]
    return [reason(catalog.title_of(int(index[i])), float(ratings[i])) + suffix for i in order]


def reason(title: str, rating: float) -> str:
    """'because you rated "T" 5★', or 'because you read "T"' for a read without a rating."""
    if rating > 0:
        return f'because you rated "{title}" {rating:g}★'
    return f'because you read "{title}"'


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

    def explain_many(self, history: ReaderHistory, book_ids: Sequence[int]) -> list[list[str]]: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, directory: Path) -> Recommender: ...


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores (best first) among allowed, finite entries.

    Equal scores go to the lower index, also at the cut, so results are deterministic.
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores)
    if allowed is not None:
        valid &= allowed
    candidates = np.flatnonzero(valid)
    if len(candidates) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(candidates) > k:
        kth = -np.partition(-scores[candidates], k - 1)[k - 1]
        candidates = candidates[scores[candidates] >= kth]  # every item tied with the k-th
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]


#: `top_k_rows` on wide rows looks at every TOP_K_SAMPLE_STRIDE-th column first: the k-th best
#: of those is at most the row's k-th best, so every book at or above it is a candidate, and
#: only the candidates (~stride x k per row) are partitioned and sorted
TOP_K_SAMPLE_STRIDE = 8


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best finite scores' indices and values (best first, ties to the lower
    index, also at the cut); index -1 and value -inf pad rows with fewer finite scores.
    NaN counts as -inf (the rows are changed in place)."""
    scores[np.isnan(scores)] = -np.inf
    k = min(k, scores.shape[1])
    if k > 0 and scores.shape[1] >= 4 * TOP_K_SAMPLE_STRIDE * k:
        return _top_k_of_candidates(scores, k)
    return _top_k_dense(scores, k)


def _top_k_of_candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k_rows` through each row's candidates, packed left into a narrow matrix in column
    order (so ties still go to the lower index); rows with more candidates than a quarter of
    the width (many equal scores) are ranked whole."""
    n, width = scores.shape
    sample = scores[:, ::TOP_K_SAMPLE_STRIDE]
    floor = -np.partition(-sample, k - 1, axis=1)[:, k - 1 : k]
    # a sample with fewer than k finite scores: every finite score is a candidate
    np.maximum(floor, np.finfo(scores.dtype).min, out=floor)
    keep = scores >= floor
    counts = keep.sum(axis=1)
    crowded = np.flatnonzero(counts > width // 4)
    keep[crowded] = False
    counts[crowded] = 0
    flat = np.flatnonzero(keep)  # row-major: each row's candidates in column order
    rows, columns = np.divmod(flat, width)
    position = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    narrow = max(int(counts.max(initial=0)), k)
    values = np.full((n, narrow), -np.inf, dtype=scores.dtype)
    values[rows, position] = scores.reshape(-1)[flat]
    candidate_columns = np.zeros((n, narrow), dtype=np.int64)
    candidate_columns[rows, position] = columns
    picked, best = _top_k_dense(values, k)
    picked = np.where(
        picked >= 0, np.take_along_axis(candidate_columns, np.maximum(picked, 0), axis=1), -1
    )
    if len(crowded):
        picked[crowded], best[crowded] = _top_k_dense(scores[crowded], k)
    return picked, best


def _top_k_dense(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k_rows` by partitioning every row whole."""
    n, width = scores.shape
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    chosen = above | tied
    # rows with more items tied with the k-th score than places left keep the lowest indices
    # that still fit (rare among float scores, so only those rows pay for the running count)
    room = k - above.sum(axis=1)
    crowded = np.flatnonzero(tied.sum(axis=1) > room)
    if len(crowded):
        ties = tied[crowded]
        chosen[crowded] = above[crowded] | (ties & (np.cumsum(ties, axis=1) <= room[crowded, None]))
    picked = (np.flatnonzero(chosen) % width).reshape(n, k)  # row-major: k per row
    values = np.take_along_axis(scores, picked, axis=1)
    order = np.lexsort((picked, -values), axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    picked[~np.isfinite(values)] = -1
    return picked, values


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

    def refit(self, interactions: Interactions, catalog: Catalog) -> ScoringRecommender:
        """Fit again on more data, keeping what an earlier `fit` chose on validation (a
        model that chooses nothing simply fits again)."""
        return self.fit(interactions, catalog)

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """Short human sentences saying why `book_id` suits this history."""
        raise NotImplementedError

    def explain_many(self, history: ReaderHistory, book_ids: Sequence[int]) -> list[list[str]]:
        """`explain` for each of `book_ids` (a whole list's reasons); models whose reasons
        share work across books (the history's weights, one gather of their columns) do it
        once."""
        return [self.explain(history, book_id) for book_id in book_ids]

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the model as an artifact; returns its manifest."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> ScoringRecommender:
        raise NotImplementedError

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """Scores (n_histories x n_items, float32) for histories given as rows over the catalog:
        a new array the caller may change, or a read-only view."""
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
        diversity: float = 0.0,
    ) -> list[Recommendation]:
        """Top-k books for a live history; `diversity` in (0, 1] re-ranks with MMR.

        With diversity, the 10·k best candidates are re-ranked by maximal marginal relevance
        (λ = 1 − diversity), trading a little relevance for less similar neighbours.
        """
        from bookrec.recsys.diversity import mmr_rerank

        catalog = self.require_catalog()
        scores = self.scores(self.history_row(history))[0]
        allowed = allowed_mask(catalog, history, exclude, filters)
        if diversity <= 0:
            best = top_k(scores, k, allowed)
        else:
            candidates = top_k(scores, 10 * k, allowed)
            best = mmr_rerank(
                candidates,
                scores[candidates],
                self.item_scores,
                k,
                lambda_=1.0 - min(diversity, 1.0),
            )
        return [Recommendation(int(catalog.items.ids[i]), float(scores[i])) for i in best]

    def recommend_batch(
        self,
        histories: sp.csr_matrix,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
        chunk: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for each row (n x k; index -1 where fewer exist).

        Items in a row's history or `exclude` row never appear; `allowed` masks items for all.
        Rows are scored `chunk` at a time on each thread: a hybrid's chunk holds a few
        chunk x items arrays at once (40 MB each for 1,024 readers of 10k books).
        """
        n = histories.shape[0]
        indices = np.full((n, k), -1, dtype=np.int64)
        values = np.full((n, k), -np.inf, dtype=np.float32)
        histories = histories.tocsr()
        exclude = exclude.tocsr() if exclude is not None else None

        def rank(start: int, stop: int) -> None:
            # copied only when read-only (a view of the model's own scores)
            scores = np.require(self.scores(histories[start:stop]), np.float32, ["C", "W"])
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            for matrix in (histories, exclude):
                if matrix is None:
                    continue
                block = matrix[start:stop].tocoo()
                scores[block.row, block.col] = -np.inf
            take = min(k, scores.shape[1])
            indices[start:stop, :take], values[start:stop, :take] = top_k_rows(scores, take)

        # blocks on a few threads: scoring is thread-safe (a server's threads share one model)
        for_row_blocks(n, chunk, rank)
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
