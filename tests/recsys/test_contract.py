"""The contract every registered recommender keeps, checked the same way for each of them.

One parametrised suite over `registry.ALGORITHMS` (in the spirit of implicit's
recommender_base_test and lenskit's BasicComponentTests): lists are well formed and
filtered, batch equals one at a time, the live history drives the list, similar and explain
behave, artifacts round-trip and refuse corruption, and fitting is deterministic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from bookrec.recsys import registry
from bookrec.recsys.artifacts import ArtifactError
from bookrec.recsys.base import Recommendation, ScoringRecommender
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory

# -- a small data set with two taste clusters ----------------------------------------------------

BOOKS = list(range(101, 141))  # 40 books
A = BOOKS[:20]  # "dragon" cluster
B = BOOKS[20:]  # "garden" cluster
NEVER_RATED = 140  # in the catalog, nobody rated it
WORDS = [
    "fire", "storm", "crown", "blade", "tower", "shadow", "river", "stone", "winter", "night",
    "silver", "iron", "raven", "throne", "wolf", "ember", "frost", "ash", "oath", "gate",
]  # fmt: skip
TAG_NAMES = {1: "fantasy", 2: "epic", 3: "romance", 4: "letters", 9: "classics"}
ALGORITHMS = sorted(registry.ALGORITHMS)
PERSONALISED = [name for name in ALGORITHMS if name != "popularity"]

FAST: dict[str, dict[str, Any]] = {
    "content": {"neighbours": 20},
    "itemknn": {"neighbours": 20},
    "als": {"factors": 8, "iterations": 5},
    "ease": {"l2": 20.0},
    "hybrid": {
        "components": {
            "ease": {"l2": 20.0},
            "itemknn": {"neighbours": 20},
            "als": {"factors": 8, "iterations": 3},
            "content": {"neighbours": 20},
            "popularity": {},
        },
        "validation_readers": 50,
        "ease_l2_grid": [10.0, 50.0],
    },
}


def _facts() -> dict[int, dict[str, Any]]:
    """Per book: title, authors (ids and names), tags, year (None: unknown), language."""
    facts = {}
    for position, book in enumerate(BOOKS):
        in_a = book in A
        local = position % 20
        authors = [1 + local % 4] if in_a else [5 + local % 4]
        if local == 3:
            authors.append(9)  # one co-author shared by both clusters
        tags = [1, 2] if in_a and local % 2 == 0 else [1] if in_a else [3]
        if not in_a and local % 2 == 0:
            tags.append(4)
        if local % 5 == 0:
            tags.append(9)
        facts[book] = {
            "title": f"{'Dragon' if in_a else 'Garden'} {WORDS[local].title()} "
            f"{'Saga' if in_a else 'Letters'}",
            "authors": authors,
            "author_names": ", ".join(f"Author{a} Surname{a}" for a in authors),
            "tags": tags,
            "year": None if local == 7 else 1950 + 2 * local + (0 if in_a else 1),
            "language": "" if local == 11 else "fre" if local % 4 == 1 else "eng",
        }
    return facts


FACTS = _facts()


def make_catalog() -> Catalog:
    items = IdMap.of(BOOKS)
    author_ids = [a for book in BOOKS for a in FACTS[book]["authors"]]
    tag_ids = [t for book in BOOKS for t in FACTS[book]["tags"]]
    vocab = sorted(TAG_NAMES)
    return Catalog(
        items=items,
        year=np.asarray(
            [np.nan if FACTS[b]["year"] is None else FACTS[b]["year"] for b in BOOKS],
            dtype=np.float32,
        ),
        language=np.asarray([FACTS[b]["language"] for b in BOOKS], dtype="<U16"),
        author_indptr=np.cumsum([0] + [len(FACTS[b]["authors"]) for b in BOOKS]),
        author_ids=np.asarray(author_ids, dtype=np.int64),
        tag_indptr=np.cumsum([0] + [len(FACTS[b]["tags"]) for b in BOOKS]),
        tag_ids=np.asarray(tag_ids, dtype=np.int64),
        title=np.asarray([FACTS[b]["title"] for b in BOOKS], dtype=str),
        authors=np.asarray([FACTS[b]["author_names"] for b in BOOKS], dtype=str),
        series=np.asarray(["" for _ in BOOKS], dtype=str),
        tag_vocab_ids=np.asarray(vocab, dtype=np.int64),
        tag_vocab_names=np.asarray([TAG_NAMES[t] for t in vocab], dtype=str),
    )


def make_interactions(seed: int = 11) -> Interactions:
    """60 readers: 1-30 like cluster A, 31-60 cluster B; a skew makes some books popular."""
    rng = np.random.default_rng(seed)
    users, books, ratings, times = [], [], [], []
    clock = 1_600_000_000
    for user in range(1, 61):
        own, other = (A, B) if user <= 30 else (B, A)
        own = [b for b in own if b != NEVER_RATED]
        other = [b for b in other if b != NEVER_RATED]
        weight = 1.0 / (np.arange(len(own)) + 3.0)
        chosen = rng.choice(
            own, size=int(rng.integers(7, 12)), replace=False, p=weight / weight.sum()
        )
        stray = rng.choice(other, size=int(rng.integers(0, 3)), replace=False)
        for book in chosen:
            users.append(user)
            books.append(int(book))
            ratings.append(int(rng.choice([3, 4, 5, 5])))
        for book in stray:
            users.append(user)
            books.append(int(book))
            ratings.append(int(rng.integers(1, 3)))
        clock += 3600
        times += [clock + i for i in range(len(chosen) + len(stray))]
    return Interactions.from_ids(
        np.asarray(users),
        np.asarray(books),
        np.asarray(ratings),
        np.asarray(times),
        items=IdMap.of(BOOKS),
    )


CATALOG = make_catalog()
INTERACTIONS = make_interactions()

# live histories, none of them a training reader
HISTORIES = {
    "dragon": ReaderHistory.of([(101, 5), (103, 4), (104, 5)]),
    "garden": ReaderHistory.of([(121, 5), (122, 5), (125, 4), (130, 2)]),
    "mixed": ReaderHistory.of([(102, 5), (123, 4), (107, 3), (129, 5), (111, 1)]),
    "single": ReaderHistory.of([(124, 5)]),
    "long": ReaderHistory.of([(b, 5 if b % 3 else 3) for b in A[:12]]),
    "empty": ReaderHistory.empty(),
}
EXCLUDE = np.asarray([102, 105, 126], dtype=np.int64)


def ids(recommendations: list[Recommendation]) -> list[int]:
    return [r.book_id for r in recommendations]


def fit(algo: str) -> ScoringRecommender:
    return registry.build(algo, FAST.get(algo, {})).fit(INTERACTIONS, CATALOG)


@pytest.fixture(scope="module", params=ALGORITHMS)
def model(request: pytest.FixtureRequest) -> ScoringRecommender:
    """Each algorithm fitted once for the whole module."""
    return fit(request.param)


def assert_well_formed(
    recommendations: list[Recommendation],
    k: int,
    history: ReaderHistory,
    exclude: np.ndarray | None = None,
) -> None:
    assert len(recommendations) <= k
    assert all(isinstance(r, Recommendation) for r in recommendations)
    book_ids = ids(recommendations)
    assert len(set(book_ids)) == len(book_ids), "duplicate books in a list"
    assert set(book_ids) <= set(BOOKS), "books outside the catalog"
    assert not set(book_ids) & set(history.book_ids.tolist()), "a read book came back"
    if exclude is not None:
        assert not set(book_ids) & set(exclude.tolist()), "an excluded book came back"
    scores = [r.score for r in recommendations]
    assert all(np.isfinite(scores))
    assert scores == sorted(scores, reverse=True), "not sorted by score, best first"


def passes(book: int, filters: Filters) -> bool:
    """The filters' meaning, written out independently of Filters.allowed."""
    fact = FACTS[book]
    if filters.language and fact["language"] != filters.language:
        return False
    if filters.year_min is not None and (fact["year"] is None or fact["year"] < filters.year_min):
        return False
    if filters.year_max is not None and (fact["year"] is None or fact["year"] > filters.year_max):
        return False
    if filters.tags and not set(fact["tags"]) & set(filters.tags):
        return False
    return not set(fact["authors"]) & set(filters.exclude_authors)


def history_rows(histories: list[ReaderHistory]) -> sp.csr_matrix:
    rows, cols, values = [], [], []
    for row, history in enumerate(histories):
        index = CATALOG.items.index(history.book_ids)
        rows += [row] * len(index)
        cols += index.tolist()
        values += history.ratings.tolist()
    return sp.csr_matrix(
        (np.asarray(values, np.float32), (rows, cols)), shape=(len(histories), len(BOOKS))
    )


# -- the contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HISTORIES))
def test_recommend_gives_a_well_formed_list(model: ScoringRecommender, name: str) -> None:
    history = HISTORIES[name]
    for exclude in (None, EXCLUDE):
        picks = model.recommend(history, 5, exclude=exclude)
        assert_well_formed(picks, 5, history, exclude)
        assert len(picks) == 5  # plenty of candidates: the list is full
    # more than the catalog holds: every candidate at most once, never the history
    everything = model.recommend(history, 100)
    assert_well_formed(everything, 100, history)
    assert len(everything) >= len(BOOKS) - len(history) - 1  # at most the unrated book missing
    assert model.recommend(history, 0) == []


@pytest.mark.parametrize(
    "filters",
    [
        Filters(language="eng"),
        Filters(year_min=1960, year_max=1980),
        Filters(tags=(2, 4)),
        Filters(exclude_authors=(1, 5, 9)),
        Filters(tags=(9,), language="eng", year_min=1950),
    ],
    ids=["language", "years", "tags", "exclude_authors", "combined"],
)
def test_filters_hold_for_every_item(model: ScoringRecommender, filters: Filters) -> None:
    candidates = {b for b in BOOKS if passes(b, filters)} - {NEVER_RATED}
    for name, history in HISTORIES.items():
        picks = model.recommend(history, 8, exclude=EXCLUDE, filters=filters)
        assert_well_formed(picks, 8, history, EXCLUDE)
        failing = [b for b in ids(picks) if not passes(b, filters)]
        assert not failing, f"{name}: {failing} break {filters}"
        open_slots = candidates - set(history.book_ids.tolist()) - set(EXCLUDE.tolist())
        assert len(picks) >= min(8, len(open_slots)), name


def assert_same_list(
    batch_ids: list[int], batch_scores: np.ndarray, single: list[Recommendation], label: str
) -> None:
    """The same books in the same order with the same scores (ties too: lower index first)."""
    assert batch_ids == ids(single), label
    np.testing.assert_allclose(
        batch_scores[: len(single)], [r.score for r in single], rtol=1e-4, atol=1e-5
    )


def test_a_whole_list_is_explained_as_each_book_alone(model: ScoringRecommender) -> None:
    """`explain_many` (a served list's reasons in one pass) says what `explain` says of each
    book, in order; a book outside the catalog gets no reason."""
    for name, history in HISTORIES.items():
        books = [int(b) for b in CATALOG.items.ids] + [999_999]
        assert model.explain_many(history, books) == [
            model.explain(history, book) for book in books
        ], name
    assert model.explain_many(HISTORIES["dragon"], []) == []


def test_recommend_batch_equals_one_at_a_time(model: ScoringRecommender) -> None:
    histories = list(HISTORIES.values())
    excludes = [EXCLUDE if i % 2 else np.zeros(0, np.int64) for i in range(len(histories))]
    exclude_rows = history_rows([ReaderHistory(e, np.ones(len(e), np.float32)) for e in excludes])
    for k, chunk in ((1, 2048), (6, 2048), (6, 2)):  # chunk 2: blocks ranked on threads
        indices, scores = model.recommend_batch(
            history_rows(histories), k, exclude=exclude_rows, chunk=chunk
        )
        assert indices.shape == scores.shape == (len(histories), k)
        for row, (history, exclude) in enumerate(zip(histories, excludes, strict=True)):
            single = model.recommend(history, k, exclude=exclude)
            batch = [int(CATALOG.items.ids[i]) for i in indices[row] if i >= 0]
            assert_same_list(batch, scores[row], single, f"k={k} chunk={chunk} row {row}")


def test_recommend_batch_equals_one_at_a_time_beyond_the_rated_books(
    model: ScoringRecommender,
) -> None:
    """k covering the whole catalog: the never-rated book is treated alike both ways."""
    histories = [HISTORIES["dragon"], HISTORIES["empty"]]
    indices, scores = model.recommend_batch(history_rows(histories), len(BOOKS))
    for row, history in enumerate(histories):
        batch = [int(CATALOG.items.ids[i]) for i in indices[row] if i >= 0]
        single = model.recommend(history, len(BOOKS))
        assert_same_list(batch, scores[row], single, f"row {row}")


class FixedScores(ScoringRecommender):
    """Base-class behaviour only: every history gets the same given scores."""

    algo = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self.fixed = np.asarray(scores, dtype=np.float32)
        self.catalog = Catalog.empty(IdMap.of(range(1, len(scores) + 1)))

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.fixed, (histories.shape[0], 1))


def test_ties_break_on_the_lower_item_index() -> None:
    from bookrec.recsys.base import top_k

    assert top_k(np.asarray([0.0, 0.0, 1.0, 1.0]), 1).tolist() == [2]
    model = FixedScores([0.0, 0.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    indices, _ = model.recommend_batch(sp.csr_matrix((1, 7), dtype=np.float32), 3)
    assert ids(model.recommend(ReaderHistory.empty(), 3)) == [3, 4, 5]
    assert indices[0].tolist() == [2, 3, 4]
    # many small tied cases against the rule written out: (-score, index) order
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(2, 30))
        k = int(rng.integers(1, n + 3))
        scores = rng.integers(0, 3, n).astype(np.float32)
        scores[rng.random(n) < 0.1] = -np.inf
        want = [i for i in np.lexsort((np.arange(n), -scores)) if np.isfinite(scores[i])][:k]
        assert top_k(scores, k).tolist() == want
        fixed = FixedScores(scores.tolist())
        got, _ = fixed.recommend_batch(sp.csr_matrix((2, n), dtype=np.float32), k)
        assert [i for i in got[1] if i >= 0] == want
        assert ids(fixed.recommend(ReaderHistory.empty(), k)) == [i + 1 for i in want]


@pytest.mark.parametrize("k", [5, 10])
def test_recommendations_follow_the_live_history(model: ScoringRecommender, k: int) -> None:
    history = HISTORIES["dragon"]
    before = model.recommend(history, k)
    new_book = next(b for b in B if b not in ids(before) and b != NEVER_RATED)
    updated = ReaderHistory(
        np.append(history.book_ids, new_book), np.append(history.ratings, np.float32(5))
    )
    after = model.recommend(updated, k)
    assert new_book not in ids(after)
    if model.algo == "popularity":
        # the same list for everyone: only what the reader read drops out
        assert ids(after) == [b for b in ids(model.recommend(history, k + 1)) if b != new_book][:k]
    else:
        assert [(r.book_id, round(r.score, 5)) for r in after] != [
            (r.book_id, round(r.score, 5)) for r in before
        ]
        assert ids(after) != ids(before), "one more rating should move the list"


def test_a_cluster_reader_gets_their_cluster(model: ScoringRecommender) -> None:
    """A sanity check that the fit learned something (popularity: the popular books)."""
    if model.algo == "popularity":
        return
    for name, cluster in (("dragon", A), ("garden", B)):
        top = ids(model.recommend(HISTORIES[name], 3))
        assert sum(b in cluster for b in top) >= 2, (name, top)


def test_unknown_books_in_a_history_are_ignored(model: ScoringRecommender) -> None:
    history = HISTORIES["mixed"]
    noisy = ReaderHistory(
        np.append(history.book_ids, [999_999, 5]), np.append(history.ratings, [5, 4])
    )
    assert ids(model.recommend(noisy, 5)) == ids(model.recommend(history, 5))


@pytest.mark.parametrize("book", [101, 110, 125, 139, NEVER_RATED])
def test_similar_never_returns_the_book_itself(model: ScoringRecommender, book: int) -> None:
    similar = model.similar(book, 5)
    assert book not in ids(similar)
    assert len(similar) <= 5
    assert len(set(ids(similar))) == len(similar)
    assert set(ids(similar)) <= set(BOOKS)
    assert [r.score for r in similar] == sorted((r.score for r in similar), reverse=True)
    filtered = model.similar(book, 5, filters=Filters(language="eng"))
    assert book not in ids(filtered)
    assert all(passes(b, Filters(language="eng")) for b in ids(filtered))
    assert model.similar(999_999, 5) == []


@pytest.mark.parametrize("name", ["dragon", "garden", "long", "empty"])
def test_explain_gives_sentences(model: ScoringRecommender, name: str) -> None:
    history = HISTORIES[name]
    picks = model.recommend(history, 3)
    for book in ids(picks):
        reasons = model.explain(history, book)
        assert isinstance(reasons, list)
        assert all(isinstance(r, str) and r.strip() for r in reasons)
        if model.algo in PERSONALISED and len(history):
            assert reasons, f"{model.algo} gave no reason for {book} it recommended"
    assert isinstance(model.explain(history, 999_999), list)


@pytest.mark.parametrize("name", ["mixed", "long", "garden"])
def test_reasons_never_cite_a_low_rating(model: ScoringRecommender, name: str) -> None:
    """A reason to read more is a book the reader liked, never a 3★ or worse."""
    history = HISTORIES[name]
    for book in ids(model.recommend(history, 10)):
        for reason in model.explain(history, book):
            for stars in re.findall(r'you rated ".*?" ([\d.]+)★', reason):
                assert float(stars) >= 4, reason


def test_save_load_round_trip(model: ScoringRecommender, tmp_path: Path) -> None:
    manifest = model.save(tmp_path / "model")
    assert isinstance(manifest, dict) and manifest["files"]
    loaded = registry.load(model.algo, tmp_path / "model")
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    for name, history in HISTORIES.items():
        for filters in (None, Filters(language="eng")):
            want = model.recommend(history, 7, exclude=EXCLUDE, filters=filters)
            got = loaded.recommend(history, 7, exclude=EXCLUDE, filters=filters)
            assert ids(got) == ids(want), name
            np.testing.assert_allclose(
                [r.score for r in got], [r.score for r in want], rtol=1e-5, atol=1e-6
            )
        book = ids(model.recommend(history, 1))[0]
        assert loaded.explain(history, book) == model.explain(history, book)
    for book in (101, 125):
        assert ids(loaded.similar(book, 5)) == ids(model.similar(book, 5))


def test_corrupted_or_missing_array_is_refused(model: ScoringRecommender, tmp_path: Path) -> None:
    directory = tmp_path / "model"
    model.save(directory)
    arrays = sorted(directory.rglob("*.npy"))
    assert arrays
    for path in arrays:
        original = path.read_bytes()
        corrupted = bytearray(original)
        corrupted[-1] ^= 0xFF
        path.write_bytes(bytes(corrupted))
        with pytest.raises(ArtifactError):
            registry.load(model.algo, directory)
        path.unlink()
        with pytest.raises(ArtifactError):
            registry.load(model.algo, directory)
        path.write_bytes(original)
    registry.load(model.algo, directory)  # intact again


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_fit_returns_the_model_and_is_deterministic(algo: str) -> None:
    first = registry.build(algo, FAST.get(algo, {}))
    assert first.fit(INTERACTIONS, CATALOG) is first
    second = fit(algo)
    for name, history in HISTORIES.items():
        want = first.recommend(history, 8, exclude=EXCLUDE)
        got = second.recommend(history, 8, exclude=EXCLUDE)
        assert ids(got) == ids(want), name
        np.testing.assert_allclose(
            [r.score for r in got], [r.score for r in want], rtol=1e-5, atol=1e-6
        )
    assert ids(second.similar(101, 5)) == ids(first.similar(101, 5))


def test_unknown_algorithm_and_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        registry.build("nope")
    for algo in ALGORITHMS:
        with pytest.raises(ValueError, match="no_such_param"):
            registry.build(algo, {"no_such_param": 1})
