"""The evaluator end to end: hand-checked tiny cases, both model APIs, and the reference value."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from bookrec.recsys.base import Recommendation
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.recsys.evaluate import by_history_length, evaluate, popularity_bias
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.recsys.splits import random_holdout

BOOKS = IdMap.of([10, 20, 30, 40, 50, 60])
CATALOG = Catalog.empty(BOOKS)
LOG2_3 = math.log2(3)

# train                          test
#   reader 1: 10 (5), 20 (4)       30 (5), 60 (2)    -> relevant {30}
#   reader 2: 10 (4), 30 (5)       20 (4), 50 (4)    -> relevant {20, 50}
#   reader 3: 10 (5), 20 (5), 40 (2)   50 (3)        -> nothing relevant: not evaluated
#   reader 4: 20 (3)               -
TRAIN = Interactions.from_ids(
    np.array([1, 1, 2, 2, 3, 3, 3, 4]),
    np.array([10, 20, 10, 30, 10, 20, 40, 20]),
    np.array([5, 4, 4, 5, 5, 5, 2, 3]),
    items=BOOKS,
)
TEST = Interactions.from_ids(
    np.array([1, 1, 2, 2, 3]),
    np.array([30, 60, 20, 50, 50]),
    np.array([5, 2, 4, 4, 3]),
    items=BOOKS,
)


class DescendingIds:
    """Recommends the highest book ids the reader has not read: a per-reader-only model."""

    def __init__(self) -> None:
        self.fitted = 0

    def fit(self, interactions: Interactions, catalog: Catalog) -> DescendingIds:
        self.fitted += 1
        return self

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
    ) -> list[Recommendation]:
        books = [b for b in (60, 50, 40, 30, 20, 10) if b not in set(history.book_ids.tolist())]
        return [Recommendation(b, 1.0) for b in books[:k]]


class FixedBatch:
    """A batch model returning one fixed ranking; records the histories it was given."""

    def __init__(self, ranking: list[int]) -> None:
        self.ranking = ranking
        self.histories: sp.csr_matrix | None = None

    def fit(self, interactions: Interactions, catalog: Catalog) -> FixedBatch:
        return self

    def recommend(self, *args: Any, **kwargs: Any) -> list[Recommendation]:
        raise AssertionError("the evaluator should use recommend_batch")

    def recommend_batch(
        self,
        histories: sp.csr_matrix,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self.histories = histories
        indices = np.tile(np.array(self.ranking[:k]), (histories.shape[0], 1))
        return indices, np.zeros(indices.shape, dtype=np.float32)


def test_popularity_and_a_per_reader_model_hand_checked() -> None:
    fake = DescendingIds()
    result = evaluate(
        {"popularity": PopularityRecommender(), "fake": fake}, TRAIN, TEST, CATALOG, k=2
    )
    assert result.user_ids.tolist() == [1, 2]
    assert result.history_length.tolist() == [2, 2]
    assert result.n_relevant.tolist() == [1, 2]
    assert fake.fitted == 1
    # popularity by liked count: 10 (3), 20 (2), 30 (1), 40 (0 liked but rated); 50, 60 unrated
    # reader 1 (read 10, 20) gets [30, 40]: hit at rank 1 of |rel| = 1 -> NDCG 1
    # reader 2 (read 10, 30) gets [20, 40]: hit at rank 1 of |rel| = 2 -> NDCG 1 / (1 + 1/log2 3)
    assert result.recommendations["popularity"].tolist() == [[2, 3], [1, 3]]
    popularity = result.metrics["popularity"]
    reader_2_ndcg = 1 / (1 + 1 / LOG2_3)  # 0.613147
    assert popularity["ndcg@2"] == pytest.approx((1 + reader_2_ndcg) / 2)  # 0.806574
    assert popularity["precision@2"] == pytest.approx(0.5)
    assert popularity["recall@2"] == pytest.approx((1 + 0.5) / 2)
    assert popularity["map@2"] == pytest.approx((1 + 0.5) / 2)
    assert popularity["hit_rate@2"] == pytest.approx(1.0)
    assert popularity["mrr@2"] == pytest.approx(1.0)
    assert popularity["coverage"] == pytest.approx(3 / 6)  # books 20, 30, 40
    # the fake: reader 1 gets [60, 50] (no hit), reader 2 gets [60, 50] (hit at rank 2)
    fake_metrics = result.metrics["fake"]
    assert result.per_user["fake"]["ndcg@2"].tolist() == pytest.approx(
        [0.0, (1 / LOG2_3) / (1 + 1 / LOG2_3)]
    )
    assert fake_metrics["mrr@2"] == pytest.approx(0.25)
    assert result.fit_seconds["fake"] is not None
    assert result.recommend_seconds["fake"] >= 0


def test_batch_models_get_the_training_histories() -> None:
    model = FixedBatch([5, 4, 2])  # books 60, 50, 30 — 30 is in reader 2's history
    with pytest.raises(ValueError, match="training history"):
        evaluate({"leaky": model}, TRAIN, TEST, CATALOG, k=3)
    assert model.histories is not None
    # rows: readers 1 and 2; values: their training ratings over the catalog
    assert model.histories.toarray().tolist() == [[5, 4, 0, 0, 0, 0], [4, 0, 5, 0, 0, 0]]
    result = evaluate({"fixed": FixedBatch([5, 4])}, TRAIN, TEST, CATALOG, k=3)
    # lists narrower than k are padded; reader 2's 50 hits at rank 2 of |rel| = 2
    assert result.recommendations["fixed"].tolist() == [[5, 4, -1], [5, 4, -1]]
    assert result.metrics["fixed"]["precision@3"] == pytest.approx((0 + 1 / 3) / 2)


def test_prefitted_models_and_threshold() -> None:
    fake = DescendingIds()
    result = evaluate({"fake": fake}, TRAIN, TEST, CATALOG, k=2, relevance_threshold=2, fit=False)
    assert fake.fitted == 0
    assert result.fit_seconds["fake"] is None
    # threshold 2: reader 3's 50 (3) and reader 1's 60 (2) become relevant
    assert result.user_ids.tolist() == [1, 2, 3]
    assert result.n_relevant.tolist() == [2, 2, 1]
    other = Catalog.empty(IdMap.of([10, 20]))
    stale = PopularityRecommender().fit(
        Interactions.from_ids(np.array([1]), np.array([10]), np.array([5]), items=other.items),
        other,
    )
    with pytest.raises(ValueError, match="different catalog"):
        evaluate({"stale": stale}, TRAIN, TEST, CATALOG, fit=False)


def test_books_outside_the_catalog_are_an_error() -> None:
    small = Catalog.empty(IdMap.of([10, 20, 30]))
    with pytest.raises(ValueError, match="not in the catalog"):
        evaluate({"popularity": PopularityRecommender()}, TRAIN, TEST, small)


def test_breakdowns_and_serialisation() -> None:
    result = evaluate(
        {"popularity": PopularityRecommender(), "fake": DescendingIds()}, TRAIN, TEST, CATALOG, k=2
    )
    breakdown = by_history_length(result, bins=(0, 2, 3))
    assert breakdown.labels == ["0–1", "2", "3+"]
    assert breakdown.users == [0, 2, 0]
    assert breakdown.metric == "ndcg@2"
    assert math.isnan(breakdown.values["popularity"][0])
    assert breakdown.values["popularity"][1] == pytest.approx(
        result.metrics["popularity"]["ndcg@2"]
    )
    assert by_history_length(result, (0, 2), metric="mrr@2").values["fake"][1] == 0.25
    with pytest.raises(ValueError, match="increasing"):
        by_history_length(result, bins=(3, 2))
    with pytest.raises(KeyError):
        by_history_length(result, metric="coverage")  # a list-level number, not per reader
    # training readers per book: 10 -> 3, 20 -> 3, 30 -> 1, 40 -> 1, 50 and 60 -> 0
    assert result.item_counts.tolist() == [3, 3, 1, 1, 0, 0]
    bias = popularity_bias(result, top_fraction=0.5)  # top 3: 10, 20, 30 (30 beats 40 on index)
    assert bias.n_popular == 3
    assert bias.catalog_share == pytest.approx(0.5)
    assert bias.rating_share == pytest.approx(7 / 8)
    assert bias.per_model["popularity"] == pytest.approx(2 / 4)  # 30, 40 | 20, 40
    assert bias.per_model["fake"] == 0.0  # 60, 50 | 60, 50
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # NaN (empty bins) became null
    assert json.loads(text)["metrics"]["popularity"]["ndcg@2"] == pytest.approx(
        result.metrics["popularity"]["ndcg@2"]
    )
    assert data["per_user"]["user_ids"] == [1, 2]
    assert data["timings"]["fake"]["fit_seconds"] is not None
    assert "per_user" not in result.to_dict(per_user=False)


# -- the reference protocol on movielens-small -------------------------------------------------

REFERENCE_NDCG = 0.155  # refeval.py baselines: popularity on movielens-small, K = 10
REFEVAL = Path(__file__).resolve().parents[3] / "shared" / "tools" / "refeval.py"


def movielens_interactions(directory: Path) -> Interactions:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(directory / "ratings.csv")
    return Interactions.from_ids(
        table["user_id"].to_numpy(),
        table["book_id"].to_numpy(),
        table["rating"].to_numpy(),
        table["timestamp"].to_numpy(),
    )


def test_popularity_ndcg_on_movielens_matches_the_reference(movielens: Path) -> None:
    data = movielens_interactions(movielens)
    train, test = random_holdout(data, fraction=0.2, seed=7, min_ratings=5)
    catalog = Catalog.empty(data.items)
    result = evaluate({"popularity": PopularityRecommender()}, train, test, catalog, k=10)
    assert abs(result.metrics["popularity"]["ndcg@10"] - REFERENCE_NDCG) < 0.01
    assert 600 < len(result.user_ids) <= len(data.users)

    if not REFEVAL.is_file():
        return
    # the reference scorer, fed our split and our lists, agrees with our numbers exactly
    spec = importlib.util.spec_from_file_location("refeval", REFEVAL)
    assert spec is not None
    assert spec.loader is not None
    refeval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refeval)
    ids = data.items.ids
    recs = {
        int(user): [int(ids[i]) for i in row if i >= 0]
        for user, row in zip(result.user_ids, result.recommendations["popularity"], strict=True)
    }
    liked = test.rating >= 4
    relevant: dict[int, set[int]] = {}
    for user, book in zip(
        test.users.ids[test.user_index[liked]], ids[test.item_index[liked]], strict=True
    ):
        relevant.setdefault(int(user), set()).add(int(book))
    theirs = refeval.metrics(recs, relevant, None, len(ids) + 1, 10)
    assert theirs["users"] == len(result.user_ids)
    for name in ("ndcg@10", "recall@10", "precision@10", "map@10"):
        assert result.metrics["popularity"][name] == pytest.approx(theirs[name], abs=1e-12)
