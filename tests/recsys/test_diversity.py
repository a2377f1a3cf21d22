"""MMR re-ranking and intra-list diversity on hand-made clusters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bookrec.recsys.diversity import intra_list_diversity, mmr_rerank


def clusters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items 0-5 point along x (cluster A), 6-11 along y (B), 12-17 along z (C).

    A is the most relevant cluster, then B, then C; candidates come best first.
    """
    rng = np.random.default_rng(0)
    vectors = np.vstack([np.eye(3)[axis] + rng.normal(0, 0.05, (6, 3)) for axis in range(3)])
    relevance = np.concatenate(
        [np.linspace(1.0, 0.9, 6), np.linspace(0.85, 0.8, 6), np.linspace(0.75, 0.7, 6)]
    )
    order = np.argsort(-relevance, kind="stable")
    return vectors, order, relevance[order]


def test_lambda_one_keeps_the_relevance_order() -> None:
    vectors, candidates, scores = clusters()
    assert mmr_rerank(candidates, scores, vectors, 8, lambda_=1.0).tolist() == (
        candidates[:8].tolist()
    )


def test_small_lambda_spreads_picks_across_clusters() -> None:
    vectors, candidates, scores = clusters()
    plain = candidates[:3]
    assert (plain < 6).all()  # relevance alone: all from cluster A
    picked = mmr_rerank(candidates, scores, vectors, 3, lambda_=0.3)
    assert picked[0] == candidates[0]  # the most relevant item still comes first
    assert sorted((picked // 6).tolist()) == [0, 1, 2]  # then one from each other cluster
    assert intra_list_diversity(picked, vectors) > intra_list_diversity(plain, vectors) + 0.5


def test_similarity_as_function_or_sparse_matrix_agree() -> None:
    vectors, candidates, scores = clusters()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def item_scores(i: int) -> np.ndarray:
        return np.asarray(unit @ unit[i])

    dense = mmr_rerank(candidates, scores, vectors, 6, lambda_=0.5)
    assert mmr_rerank(candidates, scores, item_scores, 6, lambda_=0.5).tolist() == dense.tolist()
    sparse = sp.csr_matrix(vectors)
    assert mmr_rerank(candidates, scores, sparse, 6, lambda_=0.5).tolist() == dense.tolist()


def test_edges() -> None:
    vectors, candidates, scores = clusters()
    assert mmr_rerank(candidates, scores, vectors, 0).tolist() == []
    everything = mmr_rerank(candidates, scores, vectors, 100, lambda_=0.5)
    assert sorted(everything.tolist()) == sorted(candidates.tolist())
    equal = mmr_rerank(candidates[:3], np.ones(3), vectors, 1)  # no spread in relevance
    assert equal.tolist() == [candidates[0]]
    with pytest.raises(ValueError, match="aligned"):
        mmr_rerank(candidates, scores[:3], vectors, 3)
    with pytest.raises(ValueError, match="lambda_"):
        mmr_rerank(candidates, scores, vectors, 3, lambda_=1.5)


def test_intra_list_diversity() -> None:
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    assert intra_list_diversity(np.array([0, 1]), vectors) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([0, 2]), vectors) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([0, 1, 2]), vectors) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.array([0]), vectors) == 0.0
    assert intra_list_diversity(np.array([0, 3]), sp.csr_matrix(vectors)) == pytest.approx(1.0)
