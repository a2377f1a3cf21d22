"""ALS: fit, fold-in, explanations, artifacts, and a MovieLens sanity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]

from bookrec.recsys import als
from bookrec.recsys.als import REFIT_ITERATIONS, AlsConfig, AlsRecommender
from bookrec.recsys.data import Catalog, IdMap, Interactions, ReaderHistory

# books 101-105 form cluster A, 106-110 cluster B; 111 and 112 are in the catalog, never rated
BOOKS = IdMap.of(range(101, 113))
A, B = [101, 102, 103, 104, 105], [106, 107, 108, 109, 110]


def catalog(items: IdMap = BOOKS) -> Catalog:
    titles = [f"{'A' if i <= 105 else 'B'}{i}" for i in items.ids]
    return Catalog(
        **{**Catalog.empty(items).__dict__, "title": np.asarray(titles, dtype=str)},
    )


def clustered(seed: int = 0) -> Interactions:
    """30 readers of A and 30 of B, each rating 3-4 books of their own cluster 4 or 5 stars."""
    rng = np.random.default_rng(seed)
    users, books, ratings = [], [], []
    for user in range(60):
        cluster = A if user < 30 else B
        chosen = rng.choice(cluster, size=int(rng.integers(3, 5)), replace=False)
        users += [user] * len(chosen)
        books += chosen.tolist()
        ratings += rng.integers(4, 6, len(chosen)).tolist()
    # the interactions keep their own (smaller) item space: fit maps it into the catalog's
    return Interactions.from_ids(np.array(users), np.array(books), np.array(ratings))


def low_rank(seed: int = 0, users: int = 300, items: int = 200) -> Interactions:
    """Readers with tastes over 6 latent genres, ~25 ratings each."""
    rng = np.random.default_rng(seed)
    taste = rng.dirichlet(np.full(6, 0.3), users)
    genre = rng.dirichlet(np.full(6, 0.3), items)
    affinity = taste @ genre.T
    rows, cols = [], []
    for user in range(users):
        p = affinity[user] ** 3
        chosen = rng.choice(items, size=25, replace=False, p=p / p.sum())
        rows += [user] * 25
        cols += chosen.tolist()
    ratings = rng.integers(1, 6, len(rows))
    return Interactions.from_ids(
        np.array(rows), np.array(cols), ratings, items=IdMap.of(range(items))
    )


def small() -> AlsConfig:
    return AlsConfig(factors=2, iterations=15, regularization=0.05)


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


@pytest.fixture(scope="module")
def clustered_model() -> AlsRecommender:
    return AlsRecommender(small()).fit(clustered(), catalog())


@pytest.fixture(scope="module")
def rank_model() -> tuple[AlsRecommender, Interactions]:
    interactions = low_rank()
    return AlsRecommender(AlsConfig(factors=16)).fit(
        interactions, Catalog.empty(interactions.items)
    ), interactions


def test_a_reader_of_cluster_a_gets_cluster_a(clustered_model: AlsRecommender) -> None:
    history = ReaderHistory.of([(101, 5.0), (102, 4.0)])
    recommended = ids(clustered_model.recommend(history, 3))
    assert sorted(recommended) == [103, 104, 105]  # never 101/102: the history is excluded
    assert set(ids(clustered_model.recommend(ReaderHistory.of([(108, 5.0)]), 4))) <= set(B)
    assert clustered_model.scores(clustered_model.history_row(history)).shape == (1, len(BOOKS))
    # books nobody rated have zero factors: no score, no similarity
    assert np.allclose(clustered_model.item_factors[BOOKS.index([111, 112])], 0)
    assert set(ids(clustered_model.similar(101, 4))) == {102, 103, 104, 105}
    assert clustered_model.similar(111, 4) == []
    assert clustered_model.similar(999, 4) == []


def test_exclusions_and_unknown_books(clustered_model: AlsRecommender) -> None:
    history = ReaderHistory.of([(101, 5.0), (999, 5.0)])  # 999 is not in the catalog
    recommended = ids(clustered_model.recommend(history, 10, exclude=np.array([103])))
    assert 101 not in recommended and 103 not in recommended and 999 not in recommended


def test_new_ratings_change_the_scores_at_once(clustered_model: AlsRecommender) -> None:
    before = ReaderHistory.of([(101, 5.0), (102, 5.0)])
    after = ReaderHistory.of([(101, 5.0), (102, 5.0), (106, 5.0), (107, 5.0), (108, 5.0)])
    old = clustered_model.scores(clustered_model.history_row(before))[0]
    new = clustered_model.scores(clustered_model.history_row(after))[0]
    b = BOOKS.index([109, 110])
    assert (new[b] > old[b] + 0.1).all()
    assert set(ids(clustered_model.recommend(after, 2))) == {109, 110}
    empty = clustered_model.scores(clustered_model.history_row(ReaderHistory.empty()))
    assert not empty.any()


def test_fold_in_is_the_least_squares_solve(clustered_model: AlsRecommender) -> None:
    history = ReaderHistory.of([(101, 5.0), (103, 4.0), (107, 1.0)])
    folded = clustered_model.user_vectors(clustered_model.history_row(history))[0]
    y = clustered_model.item_factors.astype(np.float64)
    confidence = 2.0  # binary weighting: alpha x 1
    rated = y[BOOKS.index(history.book_ids)]
    system = y.T @ y + 0.05 * np.eye(2) + (confidence - 1) * rated.T @ rated
    expected = np.linalg.solve(system, confidence * rated.sum(axis=0))
    np.testing.assert_allclose(folded, expected, rtol=1e-3, atol=1e-5)


def test_fold_in_of_a_training_row_recovers_its_factors(
    rank_model: tuple[AlsRecommender, Interactions],
) -> None:
    model, interactions = rank_model
    assert model.user_factors is not None
    matrix = interactions.matrix()
    folded = model.user_vectors(matrix)
    trained = model.user_factors
    cosine = (folded * trained).sum(axis=1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(trained, axis=1)
    )
    assert cosine.min() > 0.95
    top_folded, _ = model.recommend_batch(matrix, 10)
    scores = trained @ model.item_factors.T
    scores[matrix.nonzero()] = -np.inf
    top_trained = np.argsort(-scores, axis=1)[:, :10]
    overlap = [len(set(a) & set(b)) for a, b in zip(top_folded, top_trained, strict=True)]
    assert np.mean(overlap) >= 8


def test_recommend_batch_equals_recommend(rank_model: tuple[AlsRecommender, Interactions]) -> None:
    model, interactions = rank_model
    matrix = interactions.matrix()[:100]  # > 64 rows: the batch solves on every core
    exclude = sp.csr_matrix(([1.0] * 100, (range(100), [0] * 100)), shape=matrix.shape)
    top, values = model.recommend_batch(matrix, 5, exclude=exclude, chunk=40)
    for row in (0, 37, 99):
        history = ReaderHistory(
            interactions.items.ids[matrix[row].indices], matrix[row].data.astype(np.float32)
        )
        single = model.recommend(history, 5, exclude=np.array([0]))
        assert ids(single) == interactions.items.ids[top[row]].tolist()
        np.testing.assert_allclose([r.score for r in single], values[row], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cg_steps", [als.FOLD_IN_CG_STEPS, 1])
def test_a_bulk_fold_in_is_the_exact_solve(
    rank_model: tuple[AlsRecommender, Interactions],
    monkeypatch: pytest.MonkeyPatch,
    cg_steps: int,
) -> None:
    """Many rows are solved by conjugate gradient, and the rows it leaves short of the
    tolerance (all of them after a single step) exactly: the same factors as one at a time."""
    model, interactions = rank_model
    matrix = interactions.matrix()
    assert matrix.shape[0] >= als.CG_ROWS
    monkeypatch.setattr(als, "FOLD_IN_CG_STEPS", cg_steps)
    bulk = model.user_vectors(matrix)
    y = model.item_factors.astype(np.float64)
    for row in (0, 150, 299):
        rated = y[matrix[row].indices]
        confidence = 2.0  # binary weighting: alpha x 1
        system = y.T @ y + 0.05 * np.eye(16) + (confidence - 1) * rated.T @ rated
        expected = np.linalg.solve(system, confidence * rated.sum(axis=0))
        np.testing.assert_allclose(bulk[row], expected, rtol=1e-3, atol=1e-4)
    one_by_one = np.vstack([model.user_vectors(matrix[row]) for row in range(0, 300, 7)])
    np.testing.assert_allclose(bulk[::7], one_by_one, rtol=1e-3, atol=1e-4)


def test_fitting_is_deterministic() -> None:
    first = AlsRecommender(small()).fit(clustered(), catalog())
    second = AlsRecommender(small()).fit(clustered(), catalog())
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    other = AlsRecommender(small().model_copy(update={"seed": 2})).fit(clustered(), catalog())
    assert not np.array_equal(first.item_factors, other.item_factors)


def _objective(model: AlsRecommender, interactions: Interactions) -> float:
    """ALS's weighted least-squares objective over every (reader, book) pair, in numpy."""
    assert model.user_factors is not None and model.user_ids is not None
    np.testing.assert_array_equal(model.user_ids, interactions.users.ids)
    ratings = sp.csr_matrix(
        (
            interactions.rating.astype(np.float32),
            (interactions.user_index, interactions.item_index),
        ),
        shape=(len(interactions.users), len(interactions.items)),
    )
    confidence = model.confidence(ratings).toarray()
    preference = (confidence > 0).astype(np.float32)
    users, items = model.user_factors, model.item_factors
    error = (1 + confidence) * (preference - users @ items.T) ** 2
    penalty = model.config.regularization * ((users**2).sum() + (items**2).sum())
    return float(error.sum() + penalty)


@pytest.mark.parametrize("weighting", ["binary", "bm25"])
def test_a_refit_from_nearly_the_same_ratings_converges_in_a_few_iterations(
    weighting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training's refit on every rating after the gate's fit: from the gate fit's factors,
    REFIT_ITERATIONS alternations reach a fresh fit's objective (a fresh fit that short
    does not), and readers the first fit never saw get factors too."""
    full = low_rank(users=320)
    rng = np.random.default_rng(3)
    kept = (full.user_index < 300) & (rng.random(len(full.rating)) > 0.1)
    part = Interactions.from_ids(
        full.users.ids[full.user_index[kept]],
        full.items.ids[full.item_index[kept]],
        full.rating[kept],
        items=full.items,
    )
    books = Catalog.empty(full.items)
    config = AlsConfig(factors=16, weighting=weighting)

    fresh = _objective(AlsRecommender(config).fit(full, books), full)
    first = AlsRecommender(config).fit(part, books)
    iterations = []
    fit = AlternatingLeastSquares.fit

    def counted(model: AlternatingLeastSquares, *args: object, **kwargs: object) -> object:
        iterations.append(model.iterations)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(AlternatingLeastSquares, "fit", counted)
    refitted = _objective(first.refit(full, books), full)
    assert iterations == [REFIT_ITERATIONS] < [config.iterations]
    short = AlsConfig(factors=16, weighting=weighting, iterations=REFIT_ITERATIONS)
    cold_short = _objective(AlsRecommender(short).fit(full, books), full)

    assert refitted <= 1.01 * fresh
    assert cold_short > 1.05 * fresh


def test_explain_names_the_closest_rated_books(clustered_model: AlsRecommender) -> None:
    history = ReaderHistory.of([(101, 5.0), (102, 4.5), (106, 3.0)])
    reasons = clustered_model.explain(history, 104)
    assert reasons[:2] in (
        ['because you rated "A101" 5★', 'because you rated "A102" 4.5★'],
        ['because you rated "A102" 4.5★', 'because you rated "A101" 5★'],
    )
    assert all("B106" not in reason for reason in reasons)  # another cluster: no contribution
    assert clustered_model.explain(history, 999) == []
    assert clustered_model.explain(ReaderHistory.empty(), 104) == []


def test_a_list_is_explained_by_the_closest_factors_times_confidence(
    rank_model: tuple[AlsRecommender, Interactions],
) -> None:
    """Each listed book's reasons, from one product for the whole list, are the history's
    liked books with the largest cosine x confidence, computed here book by book."""
    model, interactions = rank_model
    rng = np.random.default_rng(4)
    books = interactions.items.ids
    for _ in range(5):
        rated = rng.choice(books, 12, replace=False)
        history = ReaderHistory(rated, rng.integers(1, 6, 12).astype(np.float32))
        listed = [*rng.choice(books, 8, replace=False).tolist(), int(rated[0]), 10**9]
        unit = model.item_factors / np.maximum(
            np.linalg.norm(model.item_factors, axis=1, keepdims=True), 1e-30
        )
        expected = []
        for book in listed:
            if book not in set(books.tolist()):
                expected.append([])
                continue
            target = unit[interactions.items.index([book])[0]]
            scored = []
            for rated_book, rating in zip(history.book_ids, history.ratings, strict=True):
                row = interactions.items.index([rated_book])[0]
                weight = 2.0 * (unit[row] @ target)  # binary weighting: confidence alpha x 1
                if rated_book != book and rating >= 4 and weight > 0:
                    scored.append((-weight, row, rated_book, rating))
            expected.append(
                [f'because you rated "book {b}" {r:g}★' for _, _, b, r in sorted(scored)[:3]]
            )
        assert model.explain_many(history, listed) == expected


def test_weightings_and_min_rating() -> None:
    interactions = low_rank(users=120)
    for weighting in ("rating", "bm25"):
        config = AlsConfig(factors=8, weighting=weighting, min_rating=3)
        model = AlsRecommender(config).fit(interactions, Catalog.empty(interactions.items))
        assert np.isfinite(model.item_factors).all()
        assert len(model.recommend(ReaderHistory.of([(0, 5.0), (1, 4.0)]), 5)) == 5
        # ratings under min_rating are dropped: a history of them has no basis for scores
        low = model.scores(model.history_row(ReaderHistory.of([(0, 2.0), (1, 1.0)])))
        assert not low.any()
    assert model.idf.shape == (200,) and (model.idf >= 0.01).all()
    assert model.average_length > 0


def test_save_load_round_trip(tmp_path: Path, clustered_model: AlsRecommender) -> None:
    manifest = clustered_model.save(tmp_path / "als")
    assert manifest["algo"] == "als" and manifest["params"]["factors"] == 2
    assert all(name.endswith(".npy") for name in manifest["files"])
    loaded = AlsRecommender.load(tmp_path / "als")
    assert loaded.config == clustered_model.config
    history = ReaderHistory.of([(101, 5.0), (106, 4.0)])
    assert loaded.recommend(history, 6) == clustered_model.recommend(history, 6)
    assert loaded.similar(107, 3) == clustered_model.similar(107, 3)
    assert loaded.explain(history, 103) == clustered_model.explain(history, 103)


def test_bm25_model_round_trips(tmp_path: Path) -> None:
    interactions = low_rank(users=80)
    model = AlsRecommender(AlsConfig(factors=8, weighting="bm25")).fit(
        interactions, Catalog.empty(interactions.items)
    )
    model.save(tmp_path / "bm25")
    loaded = AlsRecommender.load(tmp_path / "bm25")
    rows = interactions.matrix()[:10]
    np.testing.assert_array_equal(loaded.scores(rows), model.scores(rows))


def test_unfitted_model_refuses() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        AlsRecommender().recommend(ReaderHistory.of([(1, 5.0)]), 3)


def test_fit_refuses_books_outside_the_catalog() -> None:
    with pytest.raises(ValueError, match="outside the catalog"):
        AlsRecommender(small()).fit(clustered(), catalog(IdMap.of(range(101, 106))))


def test_movielens_ndcg_at_10(movielens: Path) -> None:
    """80/20 per-user random split; NDCG@10 of held-out ratings >= 4, train items excluded."""
    table = np.loadtxt(movielens / "ratings.csv", delimiter=",", skiprows=1, usecols=(0, 1, 2))
    users, books, ratings = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2]
    rng = np.random.default_rng(42)
    held_out = np.zeros(len(users), dtype=bool)
    for user in np.unique(users):
        rows = np.flatnonzero(users == user)
        held_out[rng.choice(rows, size=len(rows) // 5, replace=False)] = True
    items = IdMap.of(books)
    train = Interactions.from_ids(
        users[~held_out], books[~held_out], ratings[~held_out], items=items
    )
    model = AlsRecommender(AlsConfig()).fit(train, Catalog.empty(items))
    seen = train.matrix()
    relevant_rows = held_out & (ratings >= 4)
    relevant = sp.csr_matrix(
        (
            np.ones(int(relevant_rows.sum())),
            (train.users.index(users[relevant_rows]), items.index(books[relevant_rows])),
        ),
        shape=seen.shape,
    )
    top, _ = model.recommend_batch(seen, 10)
    hits = np.asarray(relevant[np.arange(len(top))[:, None], top].todense()) > 0
    discount = 1 / np.log2(np.arange(2, 12))
    counts = np.diff(relevant.indptr)
    ideal = np.cumsum(discount)[np.maximum(np.minimum(counts, 10) - 1, 0)]
    ndcg = ((hits * discount).sum(axis=1) / ideal)[counts > 0].mean()
    print(f"movielens-small ALS NDCG@10 = {ndcg:.3f}")
    assert ndcg >= 0.20, ndcg
