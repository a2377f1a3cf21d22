"""Top-K metrics over ranked lists, vectorised over users.

A *ranked* matrix has one row per user and K columns of item indices, best first, padded
with -1 where a list is shorter. *Relevant* sets are either a users x items sparse matrix
(any stored non-zero counts as relevant) or a sequence of item-index arrays, one per row.
Rows are assumed to hold distinct items (recommenders never repeat an item in one list).

Accuracy metrics follow the reference protocol (`refeval.py`): binary relevance,

- precision@K = hits / K (short lists are padded with misses),
- recall@K = hits / min(|relevant|, K),
- NDCG@K = sum over hits of 1 / log2(rank + 1), divided by the same sum over the first
  min(|relevant|, K) ranks,
- MAP@K = sum over hits of precision@rank, divided by min(|relevant|, K),
- hit rate@K = 1 if any hit, MRR@K = 1 / rank of the first hit (0 when none).

`recall_full` and `average_precision_full` divide by |relevant| instead, as ranx (and trec_eval)
do; with |relevant| <= K the two conventions agree. Users without relevant items score 0 on
every accuracy metric; `RankingMetrics.mean` averages over users with at least one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

__all__ = [
    "RankingMetrics",
    "Relevant",
    "average_precision",
    "average_precision_full",
    "catalog_coverage",
    "hit_matrix",
    "hit_rate",
    "intra_list_diversity",
    "ndcg",
    "novelty",
    "popular_share",
    "precision",
    "ranking_metrics",
    "recall",
    "recall_full",
    "reciprocal_rank",
    "top_popular_mask",
]

Relevant: TypeAlias = "sp.spmatrix | sp.sparray | Sequence[np.ndarray]"

ACCURACY_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def _relevant_pairs(relevant: Relevant, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) pairs of the relevant sets, de-duplicated."""
    if isinstance(relevant, sp.spmatrix | sp.sparray):
        coo = sp.coo_matrix(relevant)
        coo.eliminate_zeros()
        if coo.shape[0] != n_rows:
            raise ValueError(f"relevant has {coo.shape[0]} rows, the ranked lists {n_rows}")
        rows, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    else:
        if len(relevant) != n_rows:
            raise ValueError(f"relevant has {len(relevant)} rows, the ranked lists {n_rows}")
        arrays = [np.asarray(items, dtype=np.int64).ravel() for items in relevant]
        lengths = np.array([len(items) for items in arrays], dtype=np.int64)
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
        items = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    if len(items) and items.min() < 0:
        raise ValueError("relevant item indices must be >= 0")
    # one int64 key per pair: np.unique over a 1-d array, not over the columns of a 2-d one
    width = int(items.max(initial=-1)) + 1
    keys = np.unique(rows * width + items)
    return keys // width, keys % width


def hit_matrix(ranked: np.ndarray, relevant: Relevant) -> tuple[np.ndarray, np.ndarray]:
    """Which ranked items are relevant (n x K bool) and how many items each user has relevant."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2:
        raise ValueError("ranked must be a 2-d array (users x K)")
    n_rows = ranked.shape[0]
    rows, items = _relevant_pairs(relevant, n_rows)
    n_relevant = np.bincount(rows, minlength=n_rows).astype(np.int64)
    width = int(max(items.max(initial=-1), ranked.max(initial=-1))) + 1
    relevant_keys = rows * width + items  # sorted: pairs come out of np.unique sorted
    ranked_keys = np.arange(n_rows, dtype=np.int64)[:, None] * width + ranked
    position = np.searchsorted(relevant_keys, ranked_keys)
    position = np.minimum(position, max(len(relevant_keys) - 1, 0))
    hits = (
        (relevant_keys[position] == ranked_keys) & (ranked >= 0)
        if len(relevant_keys)
        else np.zeros(ranked.shape, dtype=bool)
    )
    return hits, n_relevant


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision(hits: np.ndarray) -> np.ndarray:
    """hits / K per user (K is the width of the hit matrix)."""
    k = hits.shape[1]
    if k == 0:
        return np.zeros(hits.shape[0])
    return np.asarray(hits.sum(axis=1) / k, dtype=np.float64)


def recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """hits / min(|relevant|, K) per user: reaches 1 when the list is as good as it can be."""
    return _safe_divide(hits.sum(axis=1).astype(np.float64), np.minimum(n_relevant, hits.shape[1]))


def recall_full(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """hits / |relevant| per user (ranx / trec_eval's recall@K)."""
    return _safe_divide(hits.sum(axis=1).astype(np.float64), n_relevant)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Binary NDCG@K per user, ideal list = min(|relevant|, K) hits at the top."""
    k = hits.shape[1]
    discounts = _discounts(k)
    dcg = hits.astype(np.float64) @ discounts
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cumulative[np.minimum(n_relevant, k)]
    return _safe_divide(dcg, idcg)


def _precision_at_hits(hits: np.ndarray) -> np.ndarray:
    """Sum over hit ranks of precision at that rank, per user."""
    k = hits.shape[1]
    as_float = hits.astype(np.float64)
    precision_at = np.cumsum(as_float, axis=1) / np.arange(1, k + 1)
    return np.asarray((precision_at * as_float).sum(axis=1))


def average_precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """AP@K per user normalised by min(|relevant|, K) (the reference protocol's MAP@K)."""
    return _safe_divide(_precision_at_hits(hits), np.minimum(n_relevant, hits.shape[1]))


def average_precision_full(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """AP@K per user normalised by |relevant| (ranx / trec_eval's map@K)."""
    return _safe_divide(_precision_at_hits(hits), n_relevant)


def hit_rate(hits: np.ndarray) -> np.ndarray:
    """1.0 where the list holds at least one relevant item, else 0.0."""
    return np.asarray(hits.any(axis=1), dtype=np.float64)


def reciprocal_rank(hits: np.ndarray) -> np.ndarray:
    """1 / rank of the first relevant item (ranks from 1), 0.0 where there is none."""
    if hits.shape[1] == 0:
        return np.zeros(hits.shape[0])
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


@dataclass(frozen=True)
class RankingMetrics:
    """Per-user accuracy metrics at K (`per_user[name]`, aligned with the ranked rows)."""

    k: int
    per_user: dict[str, np.ndarray]
    n_relevant: np.ndarray

    @property
    def evaluated(self) -> np.ndarray:
        """Rows with at least one relevant item: the users the means average over."""
        return np.asarray(self.n_relevant > 0)

    def mean(self) -> dict[str, float]:
        """Mean of each metric over users with at least one relevant item (NaN if none)."""
        mask = self.evaluated
        if not mask.any():
            return {name: float("nan") for name in self.per_user}
        return {name: float(values[mask].mean()) for name, values in self.per_user.items()}


def ranking_metrics(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, full: bool = False
) -> RankingMetrics:
    """Precision, recall, NDCG, MAP, hit rate and MRR at K for every row of `ranked`.

    `k` truncates the lists (default: their width; narrower lists are padded with misses).
    `full=True` adds `recall_full` and `map_full` (normalised by |relevant|, as ranx does).
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    k = ranked.shape[1] if k is None else k
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if ranked.shape[1] < k:
        padding = np.full((ranked.shape[0], k - ranked.shape[1]), -1, dtype=np.int64)
        ranked = np.hstack([ranked, padding])
    hits, n_relevant = hit_matrix(ranked[:, :k], relevant)
    per_user = {
        "precision": precision(hits),
        "recall": recall(hits, n_relevant),
        "ndcg": ndcg(hits, n_relevant),
        "map": average_precision(hits, n_relevant),
        "hit_rate": hit_rate(hits),
        "mrr": reciprocal_rank(hits),
    }
    if full:
        per_user["recall_full"] = recall_full(hits, n_relevant)
        per_user["map_full"] = average_precision_full(hits, n_relevant)
    return RankingMetrics(k=k, per_user=per_user, n_relevant=n_relevant)


# -- beyond accuracy -----------------------------------------------------------------------


def catalog_coverage(ranked: np.ndarray, n_items: int) -> float:
    """Share of the catalog's `n_items` items recommended to at least one user."""
    ranked = np.asarray(ranked)
    if n_items <= 0:
        return 0.0
    return len(np.unique(ranked[ranked >= 0])) / n_items


def _unit_rows(vectors: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    if isinstance(vectors, np.ndarray):
        norms = np.linalg.norm(vectors, axis=1)
        scale = _safe_divide(np.ones_like(norms), norms)
        return np.asarray(vectors * scale[:, None], dtype=np.float64)
    squared = np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()
    scale = _safe_divide(np.ones_like(squared), np.sqrt(squared))
    return sp.csr_matrix(sp.diags(scale) @ vectors.astype(np.float64))


def intra_list_diversity(
    ranked: np.ndarray,
    item_vectors: sp.spmatrix | sp.sparray | np.ndarray,
    block: int = 1024,
) -> np.ndarray:
    """Mean pairwise 1 - cosine between each list's items, per user (NaN for < 2 items).

    `item_vectors` has one row per item (e.g. the item columns of the train matrix, i.e. its
    transpose, or item embeddings). An item with an all-zero vector has cosine 0 to everything.
    Cosines are computed only among recommended items, `block` items at a time.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    n_rows, k = ranked.shape
    valid = ranked >= 0
    unique, local_flat = np.unique(ranked[valid], return_inverse=True)
    local = np.full(ranked.shape, -1, dtype=np.int64)
    local[valid] = local_flat
    first, second = np.triu_indices(k, 1)
    left, right = local[:, first], local[:, second]
    pair_valid = (left >= 0) & (right >= 0)
    n_pairs = pair_valid.sum(axis=1)
    if not pair_valid.any():
        return np.full(n_rows, np.nan)
    rows = (
        sp.csr_matrix(item_vectors)
        if not isinstance(item_vectors, np.ndarray)
        else np.asarray(item_vectors)
    )
    vectors = _unit_rows(rows[unique])
    pair_left, pair_right = left[pair_valid], right[pair_valid]
    order = np.argsort(pair_left, kind="stable")
    bounds = np.searchsorted(pair_left[order], np.arange(0, len(unique) + block, block))
    cosine = np.zeros(len(pair_left), dtype=np.float64)
    for index, start in enumerate(range(0, len(unique), block)):
        chosen = order[bounds[index] : bounds[index + 1]]
        if not len(chosen):
            continue
        gram = vectors[start : start + block] @ vectors.T
        dense = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
        cosine[chosen] = dense[pair_left[chosen] - start, pair_right[chosen]]
    distance = np.zeros(pair_valid.shape, dtype=np.float64)
    distance[pair_valid] = 1.0 - cosine
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, distance.sum(axis=1) / n_pairs, np.nan)


def novelty(ranked: np.ndarray, item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information -log2(share of readers who rated the item) of each list's items.

    `item_counts[i]` is how many of the `n_users` training readers rated item i; shares are
    floored at 1 / n_users so never-rated items count as rated once. NaN for empty lists.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    counts = np.asarray(item_counts, dtype=np.float64)
    n_users = max(int(n_users), 1)
    information = -np.log2(np.clip(counts, 1.0, None) / n_users)
    valid = ranked >= 0
    values = np.where(valid, information[np.where(valid, ranked, 0)], 0.0)
    length = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, values.sum(axis=1) / length, np.nan)


def top_popular_mask(item_counts: np.ndarray, top_fraction: float = 0.1) -> np.ndarray:
    """Boolean mask of the ceil(top_fraction * n_items) most popular items (ties: lower index)."""
    counts = np.asarray(item_counts)
    n_top = int(np.ceil(top_fraction * len(counts)))
    mask = np.zeros(len(counts), dtype=bool)
    mask[np.argsort(-counts, kind="stable")[:n_top]] = True
    return mask


def popular_share(ranked: np.ndarray, popular: np.ndarray) -> float:
    """Share of all recommended slots (padding ignored) that hold a `popular` item."""
    ranked = np.asarray(ranked, dtype=np.int64)
    items = ranked[ranked >= 0]
    if not len(items):
        return float("nan")
    return float(np.asarray(popular)[items].mean())
