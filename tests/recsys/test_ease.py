"""EASE against the textbook formula, its lists and reasons, artifacts, and movielens quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from tests.fixtures.movielens import movielens_split, ndcg_at_10, popularity_ndcg

from bookrec.recsys import ease
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.recsys.ease import EaseConfig, EaseRecommender, ease_weights

BOOKS = IdMap.of([10, 20, 30, 40, 50, 60])
TITLES = ["Dune", "Dune Messiah", "Emma", "Persuasion", "Ulysses", "Unread"]


def catalog() -> Catalog:
    """Six books; 10-20 are science fiction in English, 30-40 French novels, 50 English."""
    base = Catalog.empty(BOOKS)
    return Catalog(
        items=BOOKS,
        year=np.array([1965, 1969, 1815, 1817, 1922, 2000], dtype=np.float32),
        language=np.array(["eng", "eng", "fre", "fre", "eng", "eng"]),
        author_indptr=base.author_indptr,
        author_ids=base.author_ids,
        tag_indptr=base.tag_indptr,
        tag_ids=base.tag_ids,
        title=np.array(TITLES),
    )


def interactions() -> Interactions:
    """Readers 1-4 pair Dune with Dune Messiah, 5-8 Emma with Persuasion; Ulysses in between.

    Book 60 is in the catalog but nobody rated it; the interactions' own item space leaves
    it out, so fitting has to map into the catalog's.
    """
    pairs = [
        (1, 10, 5), (1, 20, 5), (2, 10, 4), (2, 20, 5), (3, 10, 5), (3, 20, 4), (4, 10, 5),
        (4, 20, 3), (4, 50, 2), (5, 30, 5), (5, 40, 5), (6, 30, 4), (6, 40, 4), (7, 30, 5),
        (7, 40, 5), (8, 30, 3), (8, 40, 4), (8, 50, 5), (9, 50, 4), (9, 10, 2),
    ]  # fmt: skip
    users, books, ratings = (np.array(column) for column in zip(*pairs, strict=True))
    return Interactions.from_ids(users, books, ratings)


def naive_weights(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck's formula with np.linalg.inv in float64."""
    p = np.linalg.inv(x.T.astype(np.float64) @ x + l2 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[np.newaxis, :]
    np.fill_diagonal(b, 0.0)
    return b


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


def test_closed_form_matches_the_naive_inverse() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((60, 25)) < 0.3).astype(np.float32)
    b = ease_weights(sp.csr_matrix(x), 7.0)
    assert b.dtype == np.float32 and b.flags.c_contiguous
    np.testing.assert_allclose(b, naive_weights(x, 7.0), atol=2e-6)
    assert (np.diag(b) == 0).all()


def test_blocked_threaded_gram_and_mirroring_match_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ease, "GRAM_BLOCK", 96)
    monkeypatch.setattr(ease, "SYMMETRIZE_BLOCK", 50)
    x = sp.random(150, 400, density=0.05, format="csr", dtype=np.float32, random_state=5)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray()
    np.testing.assert_allclose(ease.gram_matrix(x), gram)
    np.testing.assert_allclose(np.tril(ease.gram_matrix(x, lower_only=True)), np.tril(gram))
    b = ease.ease_weights(x, 3.0)
    np.testing.assert_allclose(b, naive_weights(x.toarray(), 3.0), atol=2e-6)


def test_rating_weighting_and_min_rating_shape_x() -> None:
    config = EaseConfig(
        l2=2.0, weighting="rating", min_rating=3, precision="float32", targets="all"
    )
    model = EaseRecommender(config).fit(interactions(), catalog())
    x = interactions().matrix().toarray()  # interactions' item space: 10, 20, 30, 40, 50
    x[x < 3] = 0
    x = np.hstack([x, np.zeros((x.shape[0], 1), np.float32)])  # book 60, in catalog order
    np.testing.assert_allclose(model.weights, naive_weights(x, 2.0), rtol=1e-5, atol=1e-5)
    assert model.weights.shape == (6, 6) and not model.weights[:, 5].any()
    assert model.counts == {"n_users": 9, "n_items": 6, "n_interactions": 18}


def ridge_per_column(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """B column by column, each an independent ridge regression (scikit-learn): item j's
    liked column from every other item's column, no intercept; B_jj = 0."""
    from sklearn.linear_model import Ridge

    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = np.flatnonzero(np.arange(n) != j)
        fitted = Ridge(alpha=l2, fit_intercept=False, solver="cholesky").fit(x[:, others], y[:, j])
        b[others, j] = fitted.coef_
    return b


@pytest.mark.parametrize("block", [512, 7])
def test_liked_targets_match_a_ridge_regression_per_item(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(ease, "GRAM_BLOCK", block)
    rng = np.random.default_rng(11)
    ratings = np.where(rng.random((80, 30)) < 0.3, rng.integers(1, 6, (80, 30)), 0)
    x = (ratings > 0).astype(np.float32)
    y = (ratings >= 4).astype(np.float32)
    b = ease_weights(sp.csr_matrix(x), 5.0, sp.csr_matrix(y))
    assert b.dtype == np.float32 and (np.diag(b) == 0).all()
    np.testing.assert_allclose(b, ridge_per_column(x, y, 5.0), atol=2e-5)
    # with every rating liked, the targets are the inputs: Steck's EASE
    np.testing.assert_allclose(
        ease_weights(sp.csr_matrix(x), 5.0, sp.csr_matrix(x)), naive_weights(x, 5.0), atol=2e-5
    )


def test_liked_targets_from_ratings_and_the_fallback_without_any() -> None:
    config = EaseConfig(l2=1.0, precision="float32", unliked_weight=1.0)
    liked = EaseRecommender(config).fit(interactions(), catalog())
    assert liked.counts["n_liked"] == 16
    x = interactions().matrix().toarray()
    x = np.hstack([x, np.zeros((x.shape[0], 1), np.float32)])
    expected = ridge_per_column((x > 0).astype(np.float64), (x >= 4).astype(np.float64), 1.0)
    np.testing.assert_allclose(liked.weights, expected, atol=2e-5)

    data = interactions()
    unrated = Interactions(
        data.users, data.items, data.user_index, data.item_index, data.rating * 0 + 1
    )
    fallback = EaseRecommender(EaseConfig(l2=1.0, precision="float32")).fit(unrated, catalog())
    plain = EaseRecommender(EaseConfig(l2=1.0, precision="float32", targets="all"))
    assert fallback.counts["n_liked"] == 0
    # nothing liked: no rating counts less than another either
    assert fallback.unliked_weight == 1.0
    np.testing.assert_allclose(fallback.weights, plain.fit(unrated, catalog()).weights)


@pytest.mark.parametrize(
    "params",
    [
        {},  # liked targets, ratings below 4★ counting half as inputs
        {"targets": "all", "unliked_weight": 1.0},  # Steck's EASE
        {"targets": "all"},
        {"weighting": "rating", "targets": "all"},
        {"weighting": "rating"},  # rating-weighted inputs, liked targets
        {"min_rating": 3.0},
    ],
)
def test_validation_scores_are_the_fitted_models_scores(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, object]
) -> None:
    """Scores formed without B (the hybrid's λ search) equal a float32 fit's, at every λ;
    XᵀY is formed in chunks of a few columns here, as of CROSS_BLOCK columns per thread at
    scale."""
    monkeypatch.setattr(ease, "CROSS_BLOCK", 2)
    rng = np.random.default_rng(5)
    users, books = np.nonzero(rng.random((40, len(BOOKS))) < 0.45)
    data = Interactions.from_ids(users, BOOKS.ids[books], rng.integers(1, 6, len(users)))
    histories = sp.csr_matrix(
        np.where(rng.random((7, len(BOOKS))) < 0.4, rng.integers(1, 6, (7, len(BOOKS))), 0),
        dtype=np.float32,
    )
    config = EaseConfig(precision="float32", **params)  # type: ignore[arg-type]
    validation = ease.ValidationScores(config, data, catalog(), histories)
    for l2 in (0.5, 3.0, 40.0):
        fitted = EaseRecommender(config.model_copy(update={"l2": l2})).fit(data, catalog())
        assert validation.unliked_weight == fitted.unliked_weight
        np.testing.assert_allclose(
            validation.scores(l2), fitted.scores(histories), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("targets", ["liked", "all"])
def test_ratings_below_liked_count_less_as_inputs(targets: str) -> None:
    """unliked_weight w: X holds 1 per liked rating and w per other; B is the ridge fit of the
    targets from that X, and a history is weighted the same way when scored."""
    config = EaseConfig(l2=1.0, precision="float32", unliked_weight=0.25, targets=targets)
    model = EaseRecommender(config).fit(interactions(), catalog())
    assert model.unliked_weight == 0.25
    ratings = interactions().matrix().toarray()
    ratings = np.hstack([ratings, np.zeros((ratings.shape[0], 1), np.float32)])
    x = np.where(ratings >= 4, 1.0, np.where(ratings > 0, 0.25, 0.0))
    y = (ratings >= 4).astype(np.float64) if targets == "liked" else x
    np.testing.assert_allclose(model.weights, ridge_per_column(x, y, 1.0), atol=2e-5)

    history = ReaderHistory.of([(10, 5.0), (50, 2.0)])  # Dune liked, Ulysses not
    row = sp.csr_matrix(np.array([[5.0, 0, 0, 0, 2.0, 0]], dtype=np.float32))
    np.testing.assert_allclose(
        model.scores(row)[0], 1.0 * model.weights[0] + 0.25 * model.weights[4], rtol=1e-5
    )
    # a reason's weight is the same x_j · B[j, t]
    contributions = {"Dune": 1.0 * model.weights[0, 1], "Ulysses": 0.25 * model.weights[4, 1]}
    top = max((c, t) for t, c in contributions.items() if c > 0)[1]
    assert model.explain(history, 20)[0].startswith(f'because you rated "{top}"')


def test_a_co_read_book_comes_first_and_history_never_returns() -> None:
    model = EaseRecommender(EaseConfig(l2=1.0)).fit(interactions(), catalog())
    dune = ReaderHistory.of([(10, 5.0)])
    assert ids(model.recommend(dune, 1)) == [20]
    assert 10 not in ids(model.recommend(dune, 6))
    emma = ReaderHistory.of([(30, 5.0), (50, 4.0)])
    recommended = ids(model.recommend(emma, 6, exclude=np.array([20])))
    assert recommended[0] == 40 and not {30, 50, 20} & set(recommended)


def test_filters_apply_before_the_cut() -> None:
    model = EaseRecommender(EaseConfig(l2=1.0)).fit(interactions(), catalog())
    emma = ReaderHistory.of([(30, 5.0)])
    # Persuasion would come first, but it is French
    assert ids(model.recommend(emma, 1, filters=Filters(language="eng")))[0] != 40
    assert ids(model.recommend(emma, 1, filters=Filters(year_max=1900))) == [40]


def test_similar_uses_the_item_weights() -> None:
    model = EaseRecommender(EaseConfig(l2=1.0)).fit(interactions(), catalog())
    assert ids(model.similar(10, 1)) == [20]
    assert ids(model.similar(40, 1)) == [30]
    assert model.similar(999, 3) == []
    scores = model.item_scores(0)
    assert model.row_scale is not None
    weights = model.weights.astype(np.float32) * model.row_scale[:, None]
    np.testing.assert_allclose(scores, (weights[0] + weights[:, 0]) / 2, rtol=1e-6)


def test_explain_names_the_books_that_count() -> None:
    model = EaseRecommender(EaseConfig(l2=1.0, unliked_weight=1.0)).fit(interactions(), catalog())
    history = ReaderHistory.of([(10, 5.0), (30, 4.5), (50, 4.0)])
    reasons = model.explain(history, 20)
    # B[Dune, Messiah] = 0.70, B[Emma, Messiah] = 0.01, B[Ulysses, Messiah] = -0.14
    assert reasons == ['because you rated "Dune" 5★', 'because you rated "Emma" 4.5★']
    assert model.explain(ReaderHistory.of([(30, 4.5)]), 40) == ['because you rated "Emma" 4.5★']
    assert model.explain(ReaderHistory.of([(30, 4.5)]), 60) == []  # nobody read it
    assert model.explain(history, 999) == []
    assert model.explain(ReaderHistory.empty(), 20) == []


def test_recommend_batch_equals_recommend() -> None:
    rng = np.random.default_rng(11)
    n_users, n_items = 40, 30
    mask = rng.random((n_users, n_items)) < 0.25
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(users))
    books = IdMap(np.arange(100, 100 + n_items))
    data = Interactions.from_ids(users, books.ids[items], ratings, items=books)
    model = EaseRecommender(EaseConfig(l2=5.0, weighting="rating")).fit(data, Catalog.empty(books))
    histories = data.matrix()
    indices, values = model.recommend_batch(histories, 5, chunk=16)
    for user in range(n_users):
        row = histories[user]
        history = ReaderHistory(books.ids[row.indices], row.data)
        single = model.recommend(history, 5)
        assert [books.ids[i] for i in indices[user]] == ids(single)
        np.testing.assert_allclose(values[user], [r.score for r in single], rtol=1e-6)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = EaseRecommender(EaseConfig(l2=1.0)).fit(interactions(), catalog())
    manifest = model.save(tmp_path / "m")
    assert manifest["algo"] == "ease" and manifest["params"]["l2"] == 1.0
    assert manifest["n_interactions"] == 20 and "weights.npy" in manifest["files"]
    assert manifest["unliked_weight_used"] == 0.5
    loaded = EaseRecommender.load(tmp_path / "m")
    assert isinstance(loaded.weights, np.memmap) and loaded.config == model.config
    assert loaded.unliked_weight == 0.5
    np.testing.assert_array_equal(loaded.weights, model.weights)
    history = ReaderHistory.of([(10, 5.0), (30, 2.0)])
    for k, filters in ((6, None), (2, Filters(language="eng"))):
        assert loaded.recommend(history, k, filters=filters) == model.recommend(
            history, k, filters=filters
        )
    assert loaded.similar(30, 3) == model.similar(30, 3)
    assert loaded.explain(history, 20) == model.explain(history, 20)
    assert loaded.catalog is not None and loaded.catalog.title_of(0) == "Dune"


def test_a_version_saved_before_unliked_weight_loads_as_fitted(tmp_path: Path) -> None:
    """Older manifests have neither the param nor the weight used: every rating counted 1."""
    model = EaseRecommender(EaseConfig(l2=1.0, unliked_weight=1.0)).fit(interactions(), catalog())
    model.save(tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["params"]["unliked_weight"], manifest["unliked_weight_used"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = EaseRecommender.load(tmp_path / "m")
    assert loaded.config.unliked_weight == 1.0 and loaded.unliked_weight == 1.0
    history = ReaderHistory.of([(10, 5.0), (50, 2.0)])
    assert loaded.recommend(history, 4) == model.recommend(history, 4)


def test_a_corrupt_artifact_is_refused(tmp_path: Path) -> None:
    EaseRecommender().fit(interactions(), catalog()).save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.npy"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        EaseRecommender.load(tmp_path / "m")


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        EaseRecommender().recommend(ReaderHistory.empty(), 3)


# -- movielens-small: does it rank held-out favourites? ------------------------------------------


def test_movielens_ndcg_beats_popularity() -> None:
    data, items, relevant = movielens_split()
    model = EaseRecommender().fit(data, items)
    indices, _ = model.recommend_batch(data.matrix(), 10)
    ndcg = ndcg_at_10(indices, relevant)
    assert ndcg >= 0.28
    assert ndcg > popularity_ndcg(data, relevant) + 0.1


def test_int8_weights_are_the_float32_ones_quantised_and_score_alike() -> None:
    exact = EaseRecommender(EaseConfig(l2=2.0, precision="float32")).fit(interactions(), catalog())
    small = EaseRecommender(EaseConfig(l2=2.0)).fit(interactions(), catalog())
    assert small.weights.dtype == np.int8 and exact.weights.dtype == np.float32
    assert small.row_scale is not None
    restored = small.weights.astype(np.float32) * small.row_scale[:, None]
    step = np.abs(exact.weights).max(axis=1, keepdims=True) / 127
    assert (np.abs(restored - exact.weights) <= step / 2 + 1e-7).all()  # half a step at most
    histories = sp.random(80, 6, density=0.4, format="csr", random_state=3, dtype=np.float32)
    histories.data[:] = 5.0
    # many rows (block path) and few rows (gather path) agree with the float32 product
    np.testing.assert_allclose(small.scores(histories), exact.scores(histories), atol=0.05)
    np.testing.assert_allclose(small.scores(histories[:3]), exact.scores(histories[:3]), atol=0.05)
    assert ids(small.recommend(ReaderHistory.of([(10, 5.0)]), 3)) == ids(
        exact.recommend(ReaderHistory.of([(10, 5.0)]), 3)
    )


@pytest.mark.parametrize("readers", [1, 3, 64, 65, 300])
def test_sparse_rows_times_int8_rows_equals_the_float_product(
    monkeypatch: pytest.MonkeyPatch, readers: int
) -> None:
    """Requests (≤ 64 rows: gathered GATHER_ROWS dense rows at a time into reused buffers)
    and batches (a tile of columns at a time: 16, 16, 8 here) both give rows @ dense in
    float32."""
    monkeypatch.setattr(ease, "COLUMN_TILE", 16)
    rng = np.random.default_rng(readers)
    dense = rng.integers(-127, 128, (150, 40)).astype(np.int8)
    rows = sp.random(readers, 150, density=0.5, format="csr", dtype=np.float32, random_state=1)
    assert len(np.unique(rows.indices)) > ease.GATHER_ROWS
    expected = rows.toarray() @ dense.astype(np.float32)
    for _ in range(2):  # the second call reuses this thread's buffers
        got = ease.sparse_dense_product(rows, dense)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    other = rng.integers(-127, 128, (150, 7)).astype(np.int8)  # another width: new buffers
    np.testing.assert_allclose(
        ease.sparse_dense_product(rows, other), rows.toarray() @ other.astype(np.float32), atol=1e-3
    )
    as_float = dense.astype(np.float32)
    np.testing.assert_allclose(
        ease.sparse_dense_product(rows, as_float), rows.toarray() @ as_float, rtol=1e-5, atol=1e-3
    )
