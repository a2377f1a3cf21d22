"""Popularity maths on hand-checked cases, filters, and artifact round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.base import top_k
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.recsys.popularity import DAY, PopularityConfig, PopularityRecommender

BOOKS = IdMap.of([10, 20, 30, 40, 50])


def catalog() -> Catalog:
    """Books 10..50: years 1990..2030 step 10, languages alternate, authors and tags as CSR."""
    return Catalog(
        items=BOOKS,
        year=np.array([1990, 2000, 2010, np.nan, 2030], dtype=np.float32),
        language=np.array(["eng", "fre", "eng", "eng", "fre"]),
        author_indptr=np.array([0, 1, 2, 3, 4, 5]),
        author_ids=np.array([1, 1, 2, 3, 2]),
        tag_indptr=np.array([0, 2, 3, 3, 4, 5]),
        tag_ids=np.array([7, 8, 7, 9, 8]),
    )


def interactions() -> Interactions:
    # book 10: ratings 5,5,4 (3 liked); book 20: 5,4,4,2 (3 liked, lower mean);
    # book 30: 3,3 (0 liked); book 40: 4 (1 liked, recent); book 50: unrated
    users = [1, 2, 3, 1, 2, 3, 4, 1, 2, 4]
    books = [10, 10, 10, 20, 20, 20, 20, 30, 30, 40]
    ratings = [5, 5, 4, 5, 4, 4, 2, 3, 3, 4]
    times = [0, 0, 0, 10, 10, 10, 10, 20, 20, 100]
    return Interactions.from_ids(
        np.array(users), np.array(books), np.array(ratings), np.array(times) * DAY, items=BOOKS
    )


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


def test_liked_count_with_shrunk_mean_tie_break() -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    assert model.liked.tolist() == [3, 3, 0, 1, 0]
    # prior = median count of rated books = median(3, 4, 2, 1) = 2.5; global mean = 3.9
    assert model.mean[0] == pytest.approx((14 + 2.5 * 3.9) / (3 + 2.5))
    assert model.mean[1] == pytest.approx((15 + 2.5 * 3.9) / (4 + 2.5))
    # 10 and 20 tie on liked count; 10 has the higher shrunk mean; unrated 50 never appears
    assert ids(model.recommend(ReaderHistory.empty(), 10)) == [10, 20, 40, 30]


def test_bayesian_score_ranks_by_shrunk_mean() -> None:
    model = PopularityRecommender(PopularityConfig(score="bayesian", prior_weight=0)).fit(
        interactions(), catalog()
    )
    assert ids(model.recommend(ReaderHistory.empty(), 4)) == [10, 40, 20, 30]


def test_trending_decays_with_age() -> None:
    model = PopularityRecommender(PopularityConfig(mode="trending", half_life_days=10)).fit(
        interactions(), catalog()
    )
    # newest rating is day 100: book 40's one like (age 0) beats 20's three (age 90: 3 / 2**9)
    assert model.scores_all[3] == pytest.approx(1.0)
    assert model.scores_all[1] == pytest.approx(3 * 0.5**9)
    assert model.scores_all[0] == pytest.approx(3 * 0.5**10)
    assert ids(model.recommend(ReaderHistory.empty(), 3)) == [40, 20, 10]


def test_history_and_exclusions_never_come_back() -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    history = ReaderHistory.of([(10, 5.0)])
    assert ids(model.recommend(history, 10, exclude=np.array([40]))) == [20, 30]


def test_filters_apply_before_the_cut() -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    empty = ReaderHistory.empty()
    assert ids(model.recommend(empty, 2, filters=Filters(language="eng"))) == [10, 40]
    assert ids(model.recommend(empty, 5, filters=Filters(year_min=2000, year_max=2010))) == [20, 30]
    assert ids(model.recommend(empty, 5, filters=Filters(tags=(8,)))) == [10]
    assert ids(model.recommend(empty, 5, filters=Filters(exclude_authors=(1,)))) == [40, 30]


def test_similar_shares_author_or_tag() -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    # book 30 has author 2, shared with 50 (unrated) only; book 40 shares nothing
    # book 10: author 1 and tag 7 shared with 20; tag 8 with 50, which is unrated
    assert ids(model.similar(10, 5)) == [20]
    assert ids(model.similar(20, 5)) == [10]
    assert ids(model.similar(40, 5)) == []
    assert model.similar(999, 5) == []


def test_explain_speaks_plainly() -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    (reason,) = model.explain(ReaderHistory.empty(), 10)
    assert reason.startswith("popular: 3 readers rated it 4★ or more")


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = PopularityRecommender(PopularityConfig(mode="trending")).fit(interactions(), catalog())
    manifest = model.save(tmp_path / "m")
    assert manifest["algo"] == "popularity" and manifest["params"]["mode"] == "trending"
    loaded = PopularityRecommender.load(tmp_path / "m")
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.scores_all, model.scores_all)
    history = ReaderHistory.of([(20, 4.0)])
    assert loaded.recommend(history, 5, filters=Filters(language="eng")) == model.recommend(
        history, 5, filters=Filters(language="eng")
    )


def test_corrupt_or_missing_artifact_is_refused(tmp_path: Path) -> None:
    PopularityRecommender().fit(interactions(), catalog()).save(tmp_path / "m")
    scores = tmp_path / "m" / "scores.npy"
    data = bytearray(scores.read_bytes())
    data[-1] ^= 0xFF
    scores.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        PopularityRecommender.load(tmp_path / "m")
    scores.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        PopularityRecommender.load(tmp_path / "m")


def test_saving_over_an_existing_directory_is_refused(tmp_path: Path) -> None:
    model = PopularityRecommender().fit(interactions(), catalog())
    model.save(tmp_path / "m")
    with pytest.raises(ArtifactError, match="already exists"):
        model.save(tmp_path / "m")


def test_top_k_is_deterministic_and_respects_mask() -> None:
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 2.0])
    assert top_k(scores, 3).tolist() == [1, 2, 4]
    assert top_k(scores, 10, allowed=np.array([1, 0, 1, 1, 1], bool)).tolist() == [2, 4, 0]
    assert top_k(scores, 0).tolist() == []
