"""New books among a model's answers: merged into similar lists, blended into readers' lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import Recommendation
from bookrec.recsys.coldstart import (
    MIN_SIMILAR_COSINE,
    MIN_TASTE_COSINE,
    blend_new_books,
    merge_similar,
    new_book_slots,
)


def listed(*scores: float) -> list[Recommendation]:
    return [Recommendation(book, score) for book, score in enumerate(scores, start=1)]


def ids(recommendations: list[Recommendation]) -> list[int]:
    return [r.book_id for r in recommendations]


def test_a_new_book_goes_before_the_first_neighbour_it_beats_with_its_score() -> None:
    neighbours = listed(0.9, 0.8, 0.7, 0.6)
    cosines = np.asarray([0.9, 0.5, 0.6, 0.1])
    merged = merge_similar(neighbours, cosines, np.asarray([100]), np.asarray([0.55]), k=10)
    assert ids(merged) == [1, 100, 2, 3, 4]  # beats book 2 (0.5) first
    assert merged[1].score == 0.8  # book 2's score: the model's scale, order kept


def test_new_books_that_beat_nothing_follow_and_weak_ones_stay_out() -> None:
    neighbours = listed(0.9, 0.8)
    cosines = np.asarray([0.9, 0.8])
    weak = MIN_SIMILAR_COSINE / 2
    merged = merge_similar(
        neighbours, cosines, np.asarray([100, 101]), np.asarray([0.5, weak]), k=10
    )
    assert ids(merged) == [1, 2, 100] and merged[-1].score == 0.8
    # with no neighbours at all, a new book is scored by its cosine
    alone = merge_similar([], np.zeros(0), np.asarray([100]), np.asarray([0.5]), k=10)
    assert alone == [Recommendation(100, 0.5)]


def test_at_most_the_closest_new_books_of_a_bounded_share_are_merged() -> None:
    neighbours = listed(0.9, 0.8, 0.7)
    cosines = np.asarray([0.3, 0.2, 0.1])
    new_ids = np.asarray([100, 101, 102, 103])
    new_cosines = np.asarray([0.5, 0.9, 0.7, 0.6])
    merged = merge_similar(neighbours, cosines, new_ids, new_cosines, k=10)
    assert new_book_slots(10) == 2
    assert ids(merged) == [101, 102, 1, 2, 3]  # the two closest, closest first
    assert ids(merge_similar(neighbours, cosines, new_ids, new_cosines, k=5)) == [101, 1, 2, 3]


def unit_rows(*rows: list[float]) -> sp.csr_matrix:
    matrix = np.asarray(rows, dtype=np.float32)
    return sp.csr_matrix(matrix / np.linalg.norm(matrix, axis=1, keepdims=True))


def test_new_books_matching_a_liked_book_take_the_middle_of_a_readers_list() -> None:
    picks = listed(*(1.0 - i / 20 for i in range(12)))
    new_ids = np.asarray([100, 101, 102])
    new_vectors = unit_rows([1, 0, 0], [0, 1, 0], [0.2, 0, 1])
    liked = (np.asarray([7, 8]), unit_rows([1, 0.1, 0], [0, 0, 1]), np.asarray([5.0, 4.0]))
    candidates = np.asarray([True, True, True])
    blended, matches = blend_new_books(picks, 10, new_ids, new_vectors, liked, candidates)
    # 100 matches liked book 7, 102 liked book 8; 101 resembles nothing liked
    assert [(m.book_id, m.liked_book_id, m.liked_rating) for m in matches] == [
        (100, 7, 5.0),
        (102, 8, 4.0),
    ]
    assert ids(blended)[:7] == [1, 2, 3, 4, 5, 100, 102]  # at k // 2, the model's order kept
    assert ids(blended)[7:] == ids(picks)[5:]
    assert blended[5].score == blended[6].score == picks[5].score
    # a book the reader rated or shelved is not a candidate; a weak match is no match
    blended, matches = blend_new_books(
        picks, 10, new_ids, new_vectors, liked, np.asarray([False, True, True])
    )
    assert [m.book_id for m in matches] == [102]
    padded = sp.hstack([new_vectors, sp.csr_matrix((3, 1))], format="csr")
    far = (np.asarray([7]), unit_rows([0.1, 0.1, 0.1, 1]), np.asarray([5.0]))
    assert (padded @ far[1].T).toarray().max() < MIN_TASTE_COSINE
    _, matches = blend_new_books(picks, 10, new_ids, padded, far, candidates)
    assert matches == []


def test_nothing_liked_blends_nothing() -> None:
    picks = listed(0.9, 0.8)
    empty = (np.zeros(0, np.int64), sp.csr_matrix((0, 3), dtype=np.float32), np.zeros(0))
    blended, matches = blend_new_books(
        picks, 10, np.asarray([100]), unit_rows([1, 0, 0]), empty, np.asarray([True])
    )
    assert blended == picks and matches == []
