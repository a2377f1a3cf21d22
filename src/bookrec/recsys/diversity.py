"""Diversity: maximal marginal relevance re-ranking and intra-list diversity.

MMR (Carbonell & Goldstein 1998) builds a list greedily. With relevance r(i) min-max scaled
to [0, 1] over the candidates (so it shares a scale with cosine similarity) and S the
already chosen items, each step takes

    argmax_i  lambda * r(i) - (1 - lambda) * max_{s in S} sim(i, s),

lambda = 1 keeps the relevance order, smaller values trade relevance for variety. Each step
costs one similarity row against all candidates (vectorised), so k steps over m candidates
cost O(k m d). Intra-list diversity is the mean pairwise 1 - cosine of a list's items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

Similarity: TypeAlias = Callable[[int], np.ndarray] | np.ndarray | sp.spmatrix


def _unit_rows(vectors: np.ndarray | sp.spmatrix, items: np.ndarray) -> np.ndarray:
    """Rows `items` of `vectors`, dense and L2-normalised (zero rows stay zero)."""
    rows = vectors[items]
    dense = np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return dense / np.where(norms > 0, norms, 1.0)


def mmr_rerank(
    candidates: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    k: int,
    lambda_: float = 0.7,
) -> np.ndarray:
    """Re-rank `candidates` (item indices, best first) by maximal marginal relevance.

    `scores` are the candidates' relevance, aligned with `candidates`. `similarity` is either
    a function from an item index to its similarity with every item (e.g. a model's
    `item_scores`) or a matrix of item vectors (rows, dense or sparse; cosine is used).
    Returns the chosen k item indices in their new order.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    relevance = np.asarray(scores, dtype=np.float64)
    if relevance.shape != candidates.shape:
        raise ValueError("scores must be aligned with candidates")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError("lambda_ must be in [0, 1]")
    k = min(int(k), len(candidates))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    finite = np.isfinite(relevance)
    low = relevance[finite].min() if finite.any() else 0.0
    spread = (relevance[finite].max() - low) if finite.any() else 0.0
    relevance = np.where(finite, (relevance - low) / spread if spread > 0 else 1.0, -np.inf)

    if callable(similarity):
        function = similarity

        def similarity_row(position: int) -> np.ndarray:
            row = np.asarray(function(int(candidates[position])), dtype=np.float64)
            return np.asarray(row[candidates])
    else:
        unit = _unit_rows(similarity, candidates)

        def similarity_row(position: int) -> np.ndarray:
            return np.asarray(unit @ unit[position])

    chosen = np.zeros(k, dtype=np.int64)
    available = np.ones(len(candidates), dtype=bool)
    closest = np.zeros(len(candidates), dtype=np.float64)  # max similarity to the chosen
    for step in range(k):
        objective = lambda_ * relevance - ((1.0 - lambda_) * closest if step else 0.0)
        objective = np.where(available, objective, -np.inf)
        best = int(np.argmax(objective))  # the first of equals: the better-ranked candidate
        chosen[step] = best
        available[best] = False
        row = np.nan_to_num(similarity_row(best), nan=0.0)
        closest = row if step == 0 else np.maximum(closest, row)
    return candidates[chosen]


def intra_list_diversity(items: np.ndarray, vectors: np.ndarray | sp.spmatrix) -> float:
    """Mean pairwise 1 - cosine between the items' vectors (0 for fewer than two items)."""
    items = np.asarray(items, dtype=np.int64)
    if len(items) < 2:
        return 0.0
    unit = _unit_rows(vectors, items)
    cosine = unit @ unit.T
    upper = np.triu_indices(len(items), k=1)
    return float(np.mean(1.0 - cosine[upper]))
