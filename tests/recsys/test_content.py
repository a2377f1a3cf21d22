"""Content recommender on a hand-made catalog: ranking, explanations, fallbacks, artifacts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bookrec.recsys.content import ContentConfig, ContentRecommender, item_vectors
from bookrec.recsys.data import Catalog, IdMap, Interactions, ReaderHistory

TAGS = {1: "fantasy", 2: "magic", 3: "dragons", 4: "epic", 5: "classics", 6: "romance"}
TAGS |= {7: "thriller", 8: "mystery", 9: "biography", 10: "to-read"}
LOTR = "The Lord of the Rings"
BOOKS = [  # book id, title, authors, series, tags
    (1, "The Hobbit", "J.R.R. Tolkien", "", [1, 3, 5, 10]),
    (2, "The Fellowship of the Ring", "J.R.R. Tolkien", LOTR, [1, 2, 4, 10]),
    (3, "The Two Towers", "J.R.R. Tolkien", LOTR, [1, 4, 10]),
    (4, "A Game of Thrones", "George R.R. Martin", "A Song of Ice and Fire", [1, 3, 4, 10]),
    (5, "A Wizard of Earthsea", "Ursula K. Le Guin", "Earthsea Cycle", [1, 2, 10]),
    (6, "Pride and Prejudice", "Jane Austen", "", [5, 6, 10]),
    (7, "Emma", "Jane Austen", "", [6, 10]),
    (8, "Gone Girl", "Gillian Flynn", "", [7, 8, 10]),
    (9, "The Girl on the Train", "Paula Hawkins", "", [7, 8]),
    (10, "Steve Jobs", "Walter Isaacson", "", [9, 10]),
]
FANTASY = {1, 2, 3, 4, 5}


def catalog() -> Catalog:
    tag_lists = [tags for *_, tags in BOOKS]
    return Catalog(
        items=IdMap.of([b[0] for b in BOOKS]),
        year=np.full(len(BOOKS), np.nan, dtype=np.float32),
        language=np.full(len(BOOKS), "eng"),
        author_indptr=np.arange(len(BOOKS) + 1),
        author_ids=np.array([1, 1, 1, 2, 3, 4, 4, 5, 6, 7]),
        tag_indptr=np.concatenate([[0], np.cumsum([len(t) for t in tag_lists])]),
        tag_ids=np.concatenate(tag_lists).astype(np.int64),
        title=np.array([b[1] for b in BOOKS]),
        authors=np.array([b[2] for b in BOOKS]),
        series=np.array([b[3] for b in BOOKS]),
        tag_vocab_ids=np.array(list(TAGS)),
        tag_vocab_names=np.array(list(TAGS.values())),
    )


def ratings() -> Interactions:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20), 3)
    books = np.concatenate([rng.choice(10, 3, replace=False) + 1 for _ in range(20)])
    return Interactions.from_ids(users, books, rng.integers(1, 6, 60), items=catalog().items)


def ids(recommendations: list) -> list[int]:  # type: ignore[type-arg]
    return [r.book_id for r in recommendations]


@pytest.fixture(scope="module")
def model() -> ContentRecommender:
    return ContentRecommender().fit(ratings(), catalog())


def test_one_fantasy_book_brings_same_author_then_fantasy(model: ContentRecommender) -> None:
    history = ReaderHistory.of([(2, 5.0)])
    recommended = ids(model.recommend(history, 4))
    assert recommended[0] == 3  # same author, same series, shared tags
    assert recommended[1] == 1  # same author
    assert set(recommended) == FANTASY - {2}  # the history never comes back
    assert ids(model.recommend(history, 2, exclude=np.array([3]))) == [1, 5]
    assert ids(model.similar(6, 1)) == [7]  # Austen with Austen


def test_explain_names_the_shared_author_and_tags(model: ContentRecommender) -> None:
    history = ReaderHistory.of([(2, 5.0), (10, 3.0)])
    reasons = model.explain(history, 3)
    assert reasons[0] == 'because you liked "The Fellowship of the Ring", also by J.R.R. Tolkien'
    assert reasons[-1].startswith("shares tags you like: ")
    assert {"epic", "fantasy"} <= set(
        reasons[-1].removeprefix("shares tags you like: ").split(", ")
    )
    assert "Steve Jobs" not in " ".join(reasons)  # rated below the reader's average
    earthsea = model.explain(history, 5)
    assert earthsea[0] == 'similar to "The Fellowship of the Ring", which you liked'
    assert earthsea[1].startswith("shares tags you like: magic")  # the rarest shared tag first
    assert model.explain(ReaderHistory.of([(4, 5.0)]), 4) == []  # the book itself is no reason
    assert model.explain(history, 999) == []


def test_a_series_without_a_shared_author_is_named() -> None:
    books = dataclasses.replace(catalog(), authors=np.array([""] * 10))
    books = dataclasses.replace(books, author_ids=np.arange(10), author_indptr=np.arange(11))
    model = ContentRecommender().fit(ratings(), books)
    assert model.explain(ReaderHistory.of([(2, 5.0)]), 3)[0] == (
        f'because you liked "The Fellowship of the Ring", also in the {LOTR} series'
    )


def test_low_ratings_push_away(model: ContentRecommender) -> None:
    history = ReaderHistory.of([(6, 1.0), (2, 5.0)])
    scores = model.scores(model.history_row(history))[0]
    assert scores[6] < 0  # Emma: Austen again, whom the reader disliked
    assert ids(model.recommend(history, 1)) == [3]
    alone = model.scores(model.history_row(ReaderHistory.of([(6, 1.0)])))[0]
    assert alone[6] < 0
    # implicit data (every rating 1): no spread, so every book counts as liked
    clicks = ratings()
    clicks = dataclasses.replace(clicks, rating=np.ones_like(clicks.rating))
    implicit = ContentRecommender().fit(clicks, catalog())
    scores = implicit.scores(implicit.history_row(ReaderHistory.of([(6, 1.0), (8, 1.0)])))[0]
    assert scores[6] > 0 and scores[8] > 0


def test_scores_are_cosines_of_the_profile(model: ContentRecommender) -> None:
    history = ReaderHistory.of([(2, 5.0), (8, 4.0), (10, 2.0)])
    row = model.history_row(history)
    profile = np.asarray((model.weights(row) @ model.vectors).toarray())[0]
    vectors = model.vectors.toarray()
    expected = vectors @ profile / np.linalg.norm(profile)
    scores = model.scores(row)[0]
    nonzero = scores != 0
    assert nonzero.sum() == 10  # with 100 neighbours, every book is reached
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_scores(0), vectors @ vectors[0], rtol=1e-5, atol=1e-6)


def test_neighbours_limit_what_a_history_reaches() -> None:
    model = ContentRecommender(ContentConfig(neighbours=1)).fit(ratings(), catalog())
    assert (np.diff(model.neighbours.indptr) <= 1).all()
    scores = model.scores(model.history_row(ReaderHistory.of([(2, 5.0)])))[0]
    assert np.flatnonzero(scores).tolist() == [1, 2]  # the history book and The Two Towers


def test_catalog_without_text_falls_back_to_authors_and_tags() -> None:
    bare = dataclasses.replace(catalog(), title=None, authors=None, series=None)
    model = ContentRecommender().fit(ratings(), bare)
    recommended = ids(model.recommend(ReaderHistory.of([(2, 5.0)]), 4))
    assert recommended[:2] in ([1, 3], [3, 1]) and set(recommended) == FANTASY - {2}
    assert model.explain(ReaderHistory.of([(2, 5.0)]), 3)[0] == (
        'because you liked "book 2", also by author 1'
    )


def test_empty_catalog_scores_zero() -> None:
    empty = Catalog.empty(catalog().items)
    model = ContentRecommender().fit(ratings(), empty)
    assert model.vectors.shape == (10, 0)
    assert not model.scores(model.history_row(ReaderHistory.of([(2, 5.0)]))).any()
    assert model.similar(2, 3) == []
    assert model.explain(ReaderHistory.of([(2, 5.0)]), 3) == []


def test_fit_without_ratings_and_odd_settings() -> None:
    nothing = Interactions.from_ids(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), items=catalog().items
    )
    model = ContentRecommender(ContentConfig(min_df=50, author_weight=0)).fit(nothing, catalog())
    assert np.isnan(model.global_mean)
    # min_df above the book count drops the title block; authors weigh nothing: tags remain
    assert model.vectors.shape[1] == max(TAGS) + 1  # tags ids 0..10 only
    assert ids(model.recommend(ReaderHistory.of([(8, 4.0)]), 1)) == [9]


def test_weights_change_the_blend() -> None:
    def cosine(vectors: sp.csr_matrix, a: int, b: int) -> float:
        return float((vectors[a] @ vectors[b].T).toarray()[0, 0])

    # The Hobbit shares tags (fantasy, dragons) with A Game of Thrones, its author with
    # The Two Towers
    tags_only = item_vectors(catalog(), ContentConfig(author_weight=0, tag_weight=1))
    assert cosine(tags_only, 0, 3) > cosine(tags_only, 0, 2)
    authors_first = item_vectors(catalog(), ContentConfig(author_weight=5))
    assert cosine(authors_first, 0, 2) > cosine(authors_first, 0, 3)


def test_deterministic_and_batch_equals_single(model: ContentRecommender) -> None:
    again = ContentRecommender().fit(ratings(), catalog())
    assert (again.vectors != model.vectors).nnz == 0
    assert (again.neighbours != model.neighbours).nnz == 0
    matrix = ratings().matrix()
    top, values = model.recommend_batch(matrix, 3)
    for row in range(matrix.shape[0]):
        history = ReaderHistory(
            catalog().items.ids[matrix[row].indices], matrix[row].data.astype(np.float32)
        )
        single = model.recommend(history, 3)
        expected = [int(catalog().items.ids[i]) for i in top[row] if i >= 0]
        assert ids(single) == expected
        np.testing.assert_allclose([r.score for r in single], values[row][: len(single)])


def test_save_load_round_trip(tmp_path: Path, model: ContentRecommender) -> None:
    manifest = model.save(tmp_path / "content")
    assert manifest["algo"] == "content" and manifest["params"]["neighbours"] == 100
    loaded = ContentRecommender.load(tmp_path / "content")
    assert loaded.config == model.config and loaded.global_mean == model.global_mean
    history = ReaderHistory.of([(2, 5.0), (6, 2.0)])
    assert loaded.recommend(history, 5) == model.recommend(history, 5)
    assert loaded.similar(8, 3) == model.similar(8, 3)
    assert loaded.explain(history, 3) == model.explain(history, 3)
    unrated = ContentRecommender().fit(
        Interactions.from_ids(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), items=catalog().items
        ),
        catalog(),
    )
    unrated.save(tmp_path / "unrated")
    assert np.isnan(ContentRecommender.load(tmp_path / "unrated").global_mean)
