"""Top-K metrics: hand-checked tiny cases, the reference protocol's loops, and ranx."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from bookrec.recsys.metrics import (
    Relevant,
    catalog_coverage,
    hit_matrix,
    intra_list_diversity,
    novelty,
    popular_share,
    ranking_metrics,
    top_popular_mask,
)

LOG2_3 = math.log2(3)

# Four users, K = 3, ten items:
#   A ranks [5, 1, 7], relevant {1, 7, 9, 11}: hits at ranks 2 and 3, |rel| = 4 > K
#   B ranks [2, -, -], relevant {2}: a one-item list with a hit at rank 1
#   C ranks [4, 6, 8], relevant {3}: no hit
#   D ranks [1, 2, 3], relevant {}: no relevant items -> zeros, left out of the means
RANKED = np.array([[5, 1, 7], [2, -1, -1], [4, 6, 8], [1, 2, 3]])
RELEVANT = [np.array([1, 7, 9, 11]), np.array([2]), np.array([3]), np.array([], dtype=np.int64)]

# A: precision 2/3; recall 2 / min(4, 3) = 2/3 (ranx-style 2/4)
#    DCG = 1/log2(3) + 1/log2(4); IDCG = 1 + 1/log2(3) + 1/2 (three ideal hits)
#    AP = (1/2 + 2/3) / min(4, 3) = 7/18 (ranx-style (1/2 + 2/3) / 4 = 7/24); MRR 1/2
A_NDCG = (1 / LOG2_3 + 0.5) / (1 + 1 / LOG2_3 + 0.5)  # 0.530721...
EXPECTED = {
    "precision": [2 / 3, 1 / 3, 0.0, 0.0],  # B: one hit out of K = 3 slots
    "recall": [2 / 3, 1.0, 0.0, 0.0],
    "ndcg": [A_NDCG, 1.0, 0.0, 0.0],
    "map": [7 / 18, 1.0, 0.0, 0.0],
    "hit_rate": [1.0, 1.0, 0.0, 0.0],
    "mrr": [0.5, 1.0, 0.0, 0.0],
    "recall_full": [0.5, 1.0, 0.0, 0.0],
    "map_full": [7 / 24, 1.0, 0.0, 0.0],
}


def as_csr(relevant: list[np.ndarray], n_items: int = 12) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(relevant)), [len(r) for r in relevant])
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, np.concatenate(relevant))), shape=(len(relevant), n_items)
    )


@pytest.mark.parametrize("relevant", [RELEVANT, as_csr(RELEVANT)], ids=["arrays", "csr"])
def test_hand_checked_per_user_values(relevant: Relevant) -> None:
    result = ranking_metrics(RANKED, relevant, full=True)
    assert result.k == 3
    assert result.n_relevant.tolist() == [4, 1, 1, 0]
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(result.per_user[name], expected, rtol=0, atol=1e-12)


def test_means_skip_users_without_relevant_items() -> None:
    means = ranking_metrics(RANKED, RELEVANT).mean()
    # averages over A, B, C (D has nothing relevant)
    assert means["precision"] == pytest.approx((2 / 3 + 1 / 3) / 3)  # 1/3
    assert means["recall"] == pytest.approx((2 / 3 + 1) / 3)  # 5/9
    assert means["ndcg"] == pytest.approx((A_NDCG + 1) / 3)  # 0.510240...
    assert means["map"] == pytest.approx((7 / 18 + 1) / 3)  # 25/54
    assert means["hit_rate"] == pytest.approx(2 / 3)
    assert means["mrr"] == pytest.approx(0.5)
    assert math.isnan(ranking_metrics(RANKED[3:], RELEVANT[3:]).mean()["ndcg"])


def test_k_truncates_and_pads() -> None:
    # k = 2 keeps A's [5, 1]: one hit at rank 2; IDCG over min(4, 2) = 2 ranks
    truncated = ranking_metrics(RANKED, RELEVANT, k=2)
    assert truncated.per_user["precision"][0] == pytest.approx(1 / 2)
    assert truncated.per_user["recall"][0] == pytest.approx(1 / 2)
    assert truncated.per_user["ndcg"][0] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    # k = 5 pads with misses: B's precision becomes 1/5, its NDCG stays 1
    padded = ranking_metrics(RANKED, RELEVANT, k=5)
    assert padded.per_user["precision"][1] == pytest.approx(1 / 5)
    assert padded.per_user["ndcg"][1] == pytest.approx(1.0)
    assert padded.per_user["recall"][0] == pytest.approx(2 / 4)  # min(4, 5) = 4


def test_hit_matrix_ignores_padding_and_duplicate_relevant_items() -> None:
    # -1 in row 1 must not match item (width - 1) of row 0 through key arithmetic
    ranked = np.array([[0, 3], [-1, -1]])
    hits, n_relevant = hit_matrix(ranked, [np.array([3, 3, 3]), np.array([0])])
    assert hits.tolist() == [[False, True], [False, False]]
    assert n_relevant.tolist() == [1, 1]
    hits, n_relevant = hit_matrix(ranked, sp.csr_matrix((2, 4)))
    assert not hits.any()
    assert n_relevant.tolist() == [0, 0]


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(RANKED, RELEVANT[:2])
    with pytest.raises(ValueError, match="k must be positive"):
        ranking_metrics(RANKED, RELEVANT, k=0)


# -- the reference protocol and ranx on random runs --------------------------------------------


def random_case(
    seed: int, n_users: int = 300, n_items: int = 60, k: int = 10
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Lists of 1..k distinct items (-1 padded) and 1..25 relevant items per user."""
    rng = np.random.default_rng(seed)
    ranked = np.full((n_users, k), -1, dtype=np.int64)
    relevant = []
    for user in range(n_users):
        length = rng.integers(1, k + 1)
        ranked[user, :length] = rng.choice(n_items, size=length, replace=False)
        # bias relevant sets towards the listed items so there are plenty of hits
        pool = np.concatenate([ranked[user, :length], rng.choice(n_items, size=25)])
        relevant.append(np.unique(rng.choice(pool, size=rng.integers(1, 26))))
    return ranked, relevant


def refeval_loops(ranked: np.ndarray, relevant: list[np.ndarray], k: int) -> dict[str, list[float]]:
    """refeval.py's `metrics` definitions, loop for loop."""
    out: dict[str, list[float]] = {"ndcg": [], "recall": [], "precision": [], "map": []}
    disc = 1 / np.log2(np.arange(2, k + 2))
    for row, rel in zip(ranked, relevant, strict=True):
        items = set(rel.tolist())
        lst = [i for i in row.tolist() if i >= 0][:k]
        hits = np.array([i in items for i in lst] + [False] * (k - len(lst)), float)
        idcg = disc[: min(len(items), k)].sum()
        out["ndcg"].append((hits * disc).sum() / idcg)
        out["recall"].append(hits.sum() / min(len(items), k))
        out["precision"].append(hits.sum() / k)
        prec_at = np.cumsum(hits) / np.arange(1, k + 1)
        out["map"].append((prec_at * hits).sum() / min(len(items), k))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_reference_protocol_loops(seed: int) -> None:
    ranked, relevant = random_case(seed)
    ours = ranking_metrics(ranked, relevant).per_user
    for name, values in refeval_loops(ranked, relevant, 10).items():
        np.testing.assert_allclose(ours[name], values, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.filterwarnings("ignore:unsafe cast")
def test_matches_ranx_on_random_runs() -> None:
    """ndcg, precision, mrr and hit rate equal ranx's everywhere (to 1e-6).

    ranx's recall@k and map@k divide by |relevant| (our `recall_full` / `map_full`); our
    protocol's recall and map divide by min(|relevant|, k), so they equal ranx's exactly on
    users with |relevant| <= k and are checked there. ranx is slow to import (numba).
    """
    ranx = pytest.importorskip("ranx")
    k = 10
    ranked, relevant = random_case(2, n_users=400)
    qrels = ranx.Qrels(
        {f"u{u}": {f"i{i}": 1 for i in rel.tolist()} for u, rel in enumerate(relevant)}
    )
    run = ranx.Run(
        {
            f"u{u}": {f"i{i}": float(k - rank) for rank, i in enumerate(row.tolist()) if i >= 0}
            for u, row in enumerate(ranked)
        }
    )
    names = ["ndcg", "precision", "mrr", "hit_rate", "recall", "map"]
    theirs = ranx.evaluate(qrels, run, [f"{n}@{k}" for n in names], return_mean=False)
    # ranx reports per-query scores in its own query order (sorted ids): align with it
    order = [int(q[1:]) for q in qrels.get_query_ids()]
    ours = ranking_metrics(ranked[order], [relevant[u] for u in order], k, full=True).per_user
    for name in ("ndcg", "precision", "mrr", "hit_rate"):
        np.testing.assert_allclose(ours[name], theirs[f"{name}@{k}"], atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ours["recall_full"], theirs[f"recall@{k}"], atol=1e-6)
    np.testing.assert_allclose(ours["map_full"], theirs[f"map@{k}"], atol=1e-6)
    small = np.array([len(relevant[u]) <= k for u in order])
    assert 50 < small.sum() < len(order)  # both regimes are exercised
    np.testing.assert_allclose(ours["recall"][small], theirs[f"recall@{k}"][small], atol=1e-6)
    np.testing.assert_allclose(ours["map"][small], theirs[f"map@{k}"][small], atol=1e-6)
    assert not np.allclose(ours["recall"][~small], theirs[f"recall@{k}"][~small])


# -- beyond accuracy ---------------------------------------------------------------------------


def test_catalog_coverage() -> None:
    # items 0 and 1 are recommended to someone: 2 of 4
    assert catalog_coverage(np.array([[0, 1], [1, -1]]), 4) == pytest.approx(0.5)
    assert catalog_coverage(np.full((2, 2), -1), 4) == 0.0


@pytest.mark.parametrize("sparse", [False, True])
def test_intra_list_diversity(sparse: bool) -> None:
    # item 0 = (1, 0), item 1 = (1, 1), item 2 = (0, 2), item 3 = (0, 0)
    # cos(0, 1) = cos(1, 2) = 1/sqrt(2), cos(0, 2) = 0, an all-zero vector has cosine 0
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
    ranked = np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1], [1, 1, -1]])
    items = sp.csr_matrix(vectors) if sparse else vectors
    diversity = intra_list_diversity(ranked, items, block=2)  # blocks of 2 items
    c = 1 / math.sqrt(2)
    assert diversity[0] == pytest.approx(((1 - c) + 1 + (1 - c)) / 3)  # 0.528595
    assert diversity[1] == pytest.approx(1.0)
    assert math.isnan(diversity[2])  # fewer than two items
    assert diversity[3] == pytest.approx(0.0)  # the same item twice: identical


def test_novelty() -> None:
    # 8 readers; shares 8/8, 2/8, 1/8, 0/8 (floored to 1/8) -> information 0, 2, 3, 3 bits
    counts = np.array([8, 2, 1, 0])
    values = novelty(np.array([[0, 1], [2, 3], [-1, -1]]), counts, 8)
    assert values[0] == pytest.approx(1.0)
    assert values[1] == pytest.approx(3.0)
    assert math.isnan(values[2])


def test_popular_items_and_their_share() -> None:
    counts = np.array([5, 9, 1, 9, 0, 2, 3, 4, 7, 6])
    # top 10% = 1 item: items 1 and 3 tie on 9 readers, the lower index wins
    assert np.flatnonzero(top_popular_mask(counts, 0.1)).tolist() == [1]
    assert np.flatnonzero(top_popular_mask(counts, 0.2)).tolist() == [1, 3]
    # 3 recommended slots (padding ignored), one holds item 1
    assert popular_share(np.array([[1, 0], [3, -1]]), top_popular_mask(counts)) == 1 / 3
