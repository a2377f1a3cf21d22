"""Item-kNN: shrunk cosine by hand, neighbour cuts, lists, reasons, artifacts, movielens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from tests.fixtures.movielens import movielens_split, ndcg_at_10, popularity_ndcg

from bookrec.recsys import knn
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.recsys.ease import interaction_matrix
from bookrec.recsys.knn import ItemKnnRecommender, KnnConfig, knn_similarity

BOOKS = IdMap.of([1, 2, 3, 4, 5, 6])
TITLES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]

# readers x books 1-5 (book 6 is in the catalog but unread)
X = np.array(
    [
        [1, 1, 0, 0, 1],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 0, 0, 1, 1],
    ],
    dtype=np.float32,
)
R6 = np.sqrt(6)
# norms: a, b = √3; c, d, e = √2. With shrinkage 1, sim = dot / (‖x‖‖y‖ + 1)
#              a            b            c          d          e
HAND = np.array(
    [
        [0,           2 / 4,       1 / (R6 + 1), 1 / (R6 + 1), 2 / (R6 + 1)],  # a
        [2 / 4,       0,           2 / (R6 + 1), 1 / (R6 + 1), 1 / (R6 + 1)],  # b
        [1 / (R6 + 1), 2 / (R6 + 1), 0,          1 / 3,      0],            # c
        [1 / (R6 + 1), 1 / (R6 + 1), 1 / 3,      0,          1 / 3],        # d
        [2 / (R6 + 1), 1 / (R6 + 1), 0,          1 / 3,      0],            # e
    ]
)  # fmt: skip
# the two nearest of each item (column): a: e, b; b: c, a; c: b, d; d: c, e; e: a, d
TOP2 = {0: [4, 1], 1: [2, 0], 2: [1, 3], 3: [2, 4], 4: [0, 3]}


def catalog() -> Catalog:
    base = Catalog.empty(BOOKS)
    return Catalog(
        items=BOOKS,
        year=np.array([1990, 2000, 2010, 2020, 2021, 2022], dtype=np.float32),
        language=np.array(["eng", "eng", "fre", "eng", "fre", "eng"]),
        author_indptr=base.author_indptr,
        author_ids=base.author_ids,
        tag_indptr=base.tag_indptr,
        tag_ids=base.tag_ids,
        title=np.array(TITLES),
    )


def interactions() -> Interactions:
    users, items = np.nonzero(X)
    ratings = 3 + (users + items) % 3  # 3..5, irrelevant to binary weighting
    return Interactions.from_ids(users + 1, items + 1, ratings)


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


def fitted(**params: object) -> ItemKnnRecommender:
    config = KnnConfig(**{"shrinkage": 1.0, **params})  # type: ignore[arg-type]
    return ItemKnnRecommender(config).fit(interactions(), catalog())


def test_shrunk_cosine_by_hand() -> None:
    model = fitted(neighbours=10)
    s = model.similarity.toarray()
    assert s.shape == (6, 6) and not s[5].any() and not s[:, 5].any()
    np.testing.assert_allclose(s[:5, :5], HAND, rtol=1e-6)
    assert model.similarity.dtype == np.float32


def test_each_item_keeps_its_top_neighbours() -> None:
    s = fitted(neighbours=2).similarity.toarray()[:5, :5]
    for item, nearest in TOP2.items():
        assert sorted(np.flatnonzero(s[:, item])) == sorted(nearest)
        np.testing.assert_allclose(s[nearest, item], HAND[nearest, item], rtol=1e-6)
    # a history of Alpha scores the items that count Alpha among their two nearest
    scores = fitted(neighbours=2).scores(sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]])))
    np.testing.assert_allclose(scores[0], [0, HAND[0, 1], 0, 0, HAND[0, 4], 0], rtol=1e-6)


def test_normalize_makes_each_items_weights_sum_to_one() -> None:
    s = fitted(neighbours=2, normalize=True).similarity.toarray()
    np.testing.assert_allclose(s.sum(axis=0), [1, 1, 1, 1, 1, 0], rtol=1e-6)


def test_no_shrinkage_and_an_unread_book_give_no_nan() -> None:
    s = fitted(shrinkage=0.0).similarity.toarray()
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s[0, 1], 2 / 3, rtol=1e-6)


def test_blocks_and_threads_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    x = sp.random(120, 300, density=0.08, format="csr", dtype=np.float32, random_state=2)
    whole = knn_similarity(x, 300, 2.0, False)
    monkeypatch.setattr(knn, "GRAM_BLOCK", 64)
    blocked = knn_similarity(x, 300, 2.0, False)
    dense = x.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    expected = dense.T @ dense / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(blocked.toarray(), expected, atol=1e-6)
    assert (blocked != whole).nnz == 0
    cut = knn_similarity(x, 7, 2.0, False)
    assert (np.diff(cut.tocsc().indptr) <= 7).all()
    assert (cut != knn_similarity(x, 7, 2.0, False)).nnz == 0  # deterministic


def test_duplicates_count_once_and_ratings_below_min_are_dropped() -> None:
    data = Interactions.from_ids(
        np.array([1, 1, 2, 2]), np.array([1, 1, 2, 3]), np.array([4, 2, 5, 1])
    )
    binary = interaction_matrix(data, catalog(), "binary", 0.0)
    assert binary.toarray()[:, :3].tolist() == [[1, 0, 0], [0, 1, 1]]
    rating = interaction_matrix(data, catalog(), "rating", 2.0)
    assert rating.toarray()[:, :3].tolist() == [[3, 0, 0], [0, 5, 0]]


def test_recommend_excludes_history_and_filters_come_first() -> None:
    model = fitted(neighbours=2)
    history = ReaderHistory.of([(1, 5.0)])
    assert ids(model.recommend(history, 2)) == [5, 2]  # sim(a, e) > sim(a, b)
    assert 1 not in ids(model.recommend(history, 6))
    assert ids(model.recommend(history, 1, exclude=np.array([5]))) == [2]
    assert ids(model.recommend(history, 1, filters=Filters(language="eng"))) == [2]


def test_similar_lists_an_items_own_neighbours() -> None:
    model = fitted(neighbours=2)
    assert ids(model.similar(3, 5)) == [2, 4]  # Charlie's two nearest: Bravo, Delta
    np.testing.assert_allclose(model.item_scores(2)[[1, 3]], HAND[[1, 3], 2], rtol=1e-6)
    assert model.similar(6, 5) == [] and model.similar(99, 5) == []


def test_explain_names_the_contributing_books() -> None:
    model = fitted(neighbours=10)
    history = ReaderHistory.of([(1, 5.0), (4, 0.0), (3, 4.5)])
    why = " and readers who liked it liked this"
    # contributions to Echo: Alpha 0.58, Delta 0.33, Charlie 0
    assert model.explain(history, 5) == [
        f'because you rated "Alpha" 5★{why}',
        f'because you read "Delta"{why}',
    ]
    assert model.explain(history, 6) == []
    assert model.explain(history, 99) == []


def test_recommend_batch_equals_recommend() -> None:
    rng = np.random.default_rng(4)
    n_users, n_items = 40, 30
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.35)
    books = IdMap(np.arange(200, 200 + n_items))
    data = Interactions.from_ids(users, books.ids[items], rng.integers(1, 6, len(users)))
    model = ItemKnnRecommender(KnnConfig(neighbours=8, weighting="rating")).fit(
        data, Catalog.empty(books)
    )
    histories = data.matrix()
    indices, values = model.recommend_batch(histories, 4, chunk=16)
    for user in range(n_users):
        row = histories[user]
        single = model.recommend(ReaderHistory(books.ids[row.indices], row.data), 4)
        assert [books.ids[i] for i in indices[user]] == ids(single)
        np.testing.assert_allclose(values[user], [r.score for r in single], rtol=1e-6)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = fitted(neighbours=2)
    manifest = model.save(tmp_path / "m")
    assert manifest["algo"] == "itemknn" and manifest["params"]["neighbours"] == 2
    assert manifest["n_users"] == 4 and manifest["n_interactions"] == 12
    loaded = ItemKnnRecommender.load(tmp_path / "m")
    assert loaded.config == model.config
    assert (loaded.similarity != model.similarity).nnz == 0
    history = ReaderHistory.of([(1, 5.0), (3, 3.0)])
    assert loaded.recommend(history, 6) == model.recommend(history, 6)
    assert loaded.similar(2, 3) == model.similar(2, 3)
    assert loaded.explain(history, 2) == model.explain(history, 2)
    data = tmp_path / "m" / "similarity_data.npy"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum"):
        ItemKnnRecommender.load(tmp_path / "m")


# -- movielens-small: does it rank held-out favourites? ------------------------------------------


def test_movielens_ndcg_beats_popularity() -> None:
    data, items, relevant = movielens_split()
    model = ItemKnnRecommender().fit(data, items)
    indices, _ = model.recommend_batch(data.matrix(), 10)
    ndcg = ndcg_at_10(indices, relevant)
    assert ndcg >= 0.22
    assert ndcg > popularity_ndcg(data, relevant) + 0.05
