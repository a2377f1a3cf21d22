"""The hybrid learns its blend on validation: co-occurrence wins where it should, cold start is
popularity (+ content), and the whole blend round-trips through its artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bookrec.recsys import hybrid, registry
from bookrec.recsys.data import Catalog, IdMap, Interactions, ReaderHistory
from bookrec.recsys.ease import EaseRecommender, ValidationScores
from bookrec.recsys.hybrid import HybridConfig, HybridRecommender
from bookrec.recsys.popularity import PopularityRecommender

N_GROUPS, GROUP = 20, 5
BOOKS = IdMap.of(range(1, N_GROUPS * GROUP + 1))
L2_GRID = (5.0, 50.0, 500.0)
COMPONENTS = ("ease", "itemknn", "content", "popularity")


def group_of(book: int) -> list[int]:
    start = (book - 1) // GROUP * GROUP + 1
    return list(range(start, start + GROUP))


def catalog() -> Catalog:
    """Titles and authors that say nothing about the groups."""
    rng = np.random.default_rng(1)
    authors = rng.integers(1, 30, len(BOOKS))
    return Catalog(
        **{
            **Catalog.empty(BOOKS).__dict__,
            "author_indptr": np.arange(len(BOOKS) + 1, dtype=np.int64),
            "author_ids": authors.astype(np.int64),
            "title": np.asarray([f"Volume {chr(65 + b % 26)}{b}" for b in BOOKS.ids], dtype=str),
        }
    )


def grouped(readers: int = 400, seed: int = 3) -> Interactions:
    """Books come in groups of five read together: each reader reads two whole groups (4-5★).

    Group popularity is only mildly skewed, so what a reader read predicts what they will read
    far better than what everyone reads. Two stray books rated 2★ add noise.
    """
    rng = np.random.default_rng(seed)
    group_weight = 1.0 / (np.arange(N_GROUPS) + 8.0)
    group_weight /= group_weight.sum()
    users, books, ratings = [], [], []
    for user in range(1, readers + 1):
        picked = rng.choice(N_GROUPS, size=2, replace=False, p=group_weight)
        read = [g * GROUP + i + 1 for g in picked for i in range(GROUP)]
        strays = rng.choice([b for b in BOOKS.ids if b not in read], size=2, replace=False)
        users += [user] * (len(read) + 2)
        books += [*read, *strays.tolist()]
        ratings += [*rng.integers(4, 6, len(read)).tolist(), 2, 2]
    return Interactions.from_ids(
        np.asarray(users), np.asarray(books), np.asarray(ratings), items=BOOKS
    )


def config(**overrides: object) -> HybridConfig:
    params: dict[str, object] = {
        "components": {
            "ease": {},
            "itemknn": {"neighbours": 20},
            "content": {"neighbours": 20},
            "popularity": {},
        },
        "validation_readers": 400,
        "ease_l2_grid": L2_GRID,
        **overrides,
    }
    return HybridConfig.model_validate(params)


@pytest.fixture(scope="module")
def data() -> Interactions:
    return grouped()


@pytest.fixture(scope="module")
def model(data: Interactions) -> HybridRecommender:
    return HybridRecommender(config()).fit(data, catalog())


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


def weight_of(model: HybridRecommender, bucket: int) -> dict[str, float]:
    """Every component's weight in `bucket`, 0 for those dropped for weighing nothing."""
    kept = dict(zip(model.components, model.weights[bucket].tolist(), strict=True))
    return {name: kept.get(name, 0.0) for name in COMPONENTS}


def test_validation_report_has_single_scores_and_the_chosen_ease_l2(
    model: HybridRecommender,
) -> None:
    report = model.validation
    singles = report["single_ndcg@10"]
    assert set(singles) == set(COMPONENTS)
    assert all(0.0 <= value <= 1.0 for value in singles.values())
    # the co-occurrence models see the groups, popularity and content cannot
    best = max(singles["ease"], singles["itemknn"])
    assert best > 0.5
    assert best > 2 * singles["popularity"] and best > 2 * singles["content"]
    assert report["blend_ndcg@10"] >= best - 1e-9
    assert report["readers"] >= 300
    chosen, tried = report["ease"]["chosen"], report["ease"]["tried"]
    # the grid is climbed from its middle value, ratings below 4★ counting half as inputs
    assert tried[0]["l2"] == L2_GRID[1] and {t["unliked_weight"] for t in tried} == {0.5}
    best = max(tried, key=lambda t: t["ndcg@10"])
    assert chosen == {"l2": best["l2"], "unliked_weight": 0.5}
    # the refit on everything keeps the chosen params
    assert model.components["ease"].config.l2 == chosen["l2"]
    assert model.components["ease"].unliked_weight == chosen["unliked_weight"]


@pytest.fixture
def scored_l2(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each λ EASE's validation readers are scored at, in order."""
    scored: list[float] = []
    real_scores = ValidationScores.scores

    def scores(self: ValidationScores, l2: float) -> np.ndarray:
        scored.append(l2)
        return real_scores(self, l2)

    monkeypatch.setattr(ValidationScores, "scores", scores)
    return scored


@pytest.fixture
def fitted_l2(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each λ an EASE model is fitted with, in order."""
    fits: list[float] = []
    real_fit = EaseRecommender.fit

    def fit(self: EaseRecommender, *args: object) -> EaseRecommender:
        fits.append(self.config.l2)
        return real_fit(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(EaseRecommender, "fit", fit)
    return fits


@pytest.mark.parametrize(
    ("curve", "fitted", "chosen"),
    [
        ({1: 0.3, 2: 0.4, 3: 0.5, 4: 0.6, 5: 0.55}, [3, 2, 4, 5], 4),  # up, past the peak
        ({1: 0.7, 2: 0.6, 3: 0.5, 4: 0.4, 5: 0.3}, [3, 2, 1], 1),  # down: up never tried
        ({1: 0.3, 2: 0.4, 3: 0.5, 4: 0.4, 5: 0.3}, [3, 2, 4], 3),  # the middle wins
    ],
)
def test_the_l2_grid_is_climbed_with_fewer_fits(
    monkeypatch: pytest.MonkeyPatch,
    data: Interactions,
    scored_l2: list[float],
    fitted_l2: list[float],
    curve: dict[float, float],
    fitted: list[float],
    chosen: float,
) -> None:
    """Validation NDCG as a function of λ (a stand-in for the real one): the search scores
    the middle value, climbs towards the better neighbour and stops at the peak; the refit
    fits EASE once, with the chosen value."""
    monkeypatch.setattr(
        hybrid, "_ndcg_at_10", lambda *_: curve[int(scored_l2[-1])] if scored_l2 else 0.0
    )
    model = HybridRecommender(config(ease_l2_grid=(5.0, 1.0, 3.0, 2.0, 4.0))).fit(data, catalog())
    assert scored_l2 == fitted
    assert model.validation["ease"]["chosen"]["l2"] == chosen
    assert model.components["ease"].config.l2 == chosen
    assert fitted_l2 == [chosen]


def test_a_given_l2_is_scored_once_and_fitted_once(
    data: Interactions, scored_l2: list[float], fitted_l2: list[float]
) -> None:
    """EASE params with an l2 (`bookrec tune`'s): no search, the validation readers are scored
    at that value, and the refit fits EASE once with it."""
    components = {"ease": {"l2": 50.0}, "itemknn": {"neighbours": 20}, "popularity": {}}
    model = HybridRecommender(config(components=components)).fit(data, catalog())
    assert scored_l2 == [50.0]
    assert fitted_l2 == [50.0]
    assert "ease" not in model.validation
    assert model.components["ease"].config.l2 == 50.0
    assert model.validation["single_ndcg@10"]["ease"] > 0.5


def test_learned_weights_favour_co_occurrence_and_cold_start_is_popularity(
    model: HybridRecommender,
) -> None:
    # a component no bucket weighs is dropped: neither refitted nor saved
    dropped = model.validation.get("dropped", [])
    assert list(model.components) == [name for name in COMPONENTS if name not in dropped]
    assert set(model.validation["single_ndcg@10"]) == set(COMPONENTS)
    assert model.weights.shape == (len(model.config.bucket_edges) + 2, len(model.components))
    assert model.weights.any(axis=0).all()
    cold = weight_of(model, 0)
    assert cold == {"ease": 0.0, "itemknn": 0.0, "content": 0.5, "popularity": 1.0}
    for bucket in range(1, model.weights.shape[0]):
        weights = weight_of(model, bucket)
        learned = weights["ease"] + weights["itemknn"]
        assert learned > 0, (bucket, weights)
        assert learned >= weights["popularity"] and learned >= weights["content"], weights
    # every reader keeps about 10 training ratings: bucket 2 (10-49 books), large enough
    # (>= 200 readers) to learn weights of its own; the other buckets use the overall ones
    assert list(model.validation["buckets"]) == ["2"]
    assert model.validation["buckets"]["2"]["readers"] >= 200


def test_a_group_reader_gets_the_rest_of_the_group(model: HybridRecommender) -> None:
    group = group_of(41)
    history = ReaderHistory.of([(group[0], 5), (group[1], 4), (group[2], 5)])
    assert set(ids(model.recommend(history, 2))) == set(group[3:])


def test_empty_history_gets_the_most_popular_books(
    model: HybridRecommender, data: Interactions
) -> None:
    picks = ids(model.recommend(ReaderHistory.empty(), 5))
    assert len(picks) == 5
    popular = PopularityRecommender().fit(data, catalog())
    assert picks == ids(popular.recommend(ReaderHistory.empty(), 5))
    liked = np.bincount(data.item_index[data.rating >= 4], minlength=len(BOOKS))
    fifth_best = np.sort(liked)[::-1][4]
    assert all(liked[BOOKS.index([book])[0]] >= fifth_best for book in picks)


def test_explain_gives_at_most_three_reasons(model: HybridRecommender, data: Interactions) -> None:
    rows = data.user_index == 0
    history = ReaderHistory(
        data.items.ids[data.item_index[rows]].astype(np.int64), data.rating[rows]
    )
    long_history = ReaderHistory.of([(b, 5) for b in range(1, 31)])
    for reader in (history, long_history, ReaderHistory.of([(7, 5)])):
        picks = ids(model.recommend(reader, 5))
        for book in picks:
            reasons = model.explain(reader, book)
            assert len(reasons) <= 3
            assert all(isinstance(r, str) and r for r in reasons)
            assert len(set(reasons)) == len(reasons)
        assert model.explain(reader, picks[0]), "the top pick deserves a reason"
    assert len(model.explain(ReaderHistory.empty(), 1)) <= 3


def test_save_load_round_trip(model: HybridRecommender, tmp_path: Path) -> None:
    directory = tmp_path / "hybrid"
    manifest = model.save(directory)
    kept = list(model.components)
    assert manifest["components"] == kept
    for name in COMPONENTS:
        saved = (directory / "components" / name / "manifest.json").is_file()
        assert saved == (name in kept), name  # a dropped component is not saved
    loaded = registry.load("hybrid", directory)
    assert isinstance(loaded, HybridRecommender)
    assert list(loaded.components) == kept
    np.testing.assert_array_equal(loaded.weights, model.weights)
    assert loaded.config == model.config
    assert loaded.validation == json.loads(json.dumps(model.validation))
    assert loaded.components["ease"].config.l2 == model.components["ease"].config.l2
    for history in (
        ReaderHistory.empty(),
        ReaderHistory.of([(1, 5), (2, 4)]),
        ReaderHistory.of([(b, 4) for b in range(20, 45)]),
    ):
        want, got = model.recommend(history, 8), loaded.recommend(history, 8)
        assert ids(got) == ids(want)
        np.testing.assert_allclose([r.score for r in got], [r.score for r in want], rtol=1e-5)
        if want:
            book = want[0].book_id
            assert loaded.explain(history, book) == model.explain(history, book)
    assert ids(loaded.similar(3, 4)) == ids(model.similar(3, 4))


def test_without_ease_the_l2_search_is_skipped(data: Interactions) -> None:
    model = HybridRecommender(
        config(components={"itemknn": {"neighbours": 20}}, validation_readers=50)
    ).fit(data, catalog())
    # popularity is always there for the cold start
    assert list(model.components) == ["itemknn", "popularity"]
    assert "ease" not in model.validation
    assert dict(zip(model.components, model.weights[0].tolist(), strict=True)) == {
        "itemknn": 0.0,
        "popularity": 1.0,
    }
    assert model.weights[1, 0] > 0


def test_two_components_citing_the_same_book_make_one_reason(model: HybridRecommender) -> None:
    class Saying:
        def __init__(self, *reasons: str) -> None:
            self.reasons = list(reasons)

        def explain_many(self, history: ReaderHistory, book_ids: list[int]) -> list[list[str]]:
            return [self.reasons for _ in book_ids]

    names = list(model.components)[:2]
    kept = dict(model.components)
    weights = model.weights.copy()
    try:
        model.components[names[0]] = Saying('because you rated "Emma" 5★')
        model.components[names[1]] = Saying(
            'because you liked "Emma", also by Jane Austen', 'because you rated "Dune" 4★'
        )
        model.weights[:] = 0.0
        model.weights[:, 0], model.weights[:, 1] = 2.0, 1.0
        reasons = model.explain(ReaderHistory.empty(), 1)
    finally:
        model.components.clear()
        model.components.update(kept)
        model.weights = weights
    assert reasons == [
        'because you liked "Emma", also by Jane Austen',
        'because you rated "Dune" 4★',
    ]


def test_validation_ndcg_matches_a_row_by_row_count() -> None:
    """Blocks of rows (more rows than a block) give each row's NDCG@10 as counted by hand:
    seen items never ranked, binary gains, the ideal from min(relevant, 10)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    rows, items = 2 * hybrid.NDCG_BLOCK_ROWS + 37, 60
    scores = rng.normal(size=(rows, items)).astype(np.float32)
    seen = sp.csr_matrix((rng.random((rows, items)) < 0.2).astype(np.float32))
    relevant = sp.csr_matrix(((rng.random((rows, items)) < 0.15) & (seen.toarray() == 0)) * 1.0)
    expected = []
    for row in range(rows):
        ranked = [i for i in np.argsort(-scores[row]) if not seen[row, i]][:10]
        gains = [float(relevant[row, i] > 0) for i in ranked]
        dcg = sum(g / np.log2(position + 2) for position, g in enumerate(gains))
        wanted = min(int(relevant[row].sum()), 10)
        ideal = sum(1 / np.log2(position + 2) for position in range(wanted))
        expected.append(dcg / ideal if wanted else 0.0)
    assert hybrid._ndcg_at_10(scores, relevant, seen) == pytest.approx(np.mean(expected))
    assert np.isnan(hybrid._ndcg_at_10(scores[:0], relevant[:0], seen[:0]))


def test_standardise_is_numpys_z_score_in_place_only_for_fresh_scores() -> None:
    """Rows become (x - mean) / std exactly as numpy computes them (a row without spread:
    zeros; -inf: the row's lowest finite score). A writeable float32 array is a component's
    fresh scores and is reused; a read-only view of a model's own scores is left alone."""
    rng = np.random.default_rng(4)
    scores = (rng.standard_normal((40, 300)) * 30 + 5).astype(np.float32)
    scores[1] = 2.0
    scores[2, ::4] = -np.inf
    filled = scores.copy()
    filled[2, ::4] = filled[2][np.isfinite(filled[2])].min()
    std = filled.std(axis=1, keepdims=True)
    std[~(std > 0)] = 1.0
    expected = (filled - filled.mean(axis=1, keepdims=True)) / std
    view = scores.copy()
    view.flags.writeable = False
    assert np.array_equal(hybrid._standardise(view), expected)
    assert np.array_equal(view, scores, equal_nan=True)  # untouched
    fresh = np.delete(scores, 2, axis=0)  # all finite: standardised where it lies
    out = hybrid._standardise(fresh)
    assert out is fresh
    assert np.array_equal(out, np.delete(expected, 2, axis=0))
    assert not out[1].any()  # no spread: zeros
