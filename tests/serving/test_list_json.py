"""Unexplained lists are written from the cards' stored JSON: the same bytes as the models."""

from __future__ import annotations

from typing import Any, cast

from bookrec.recsys.base import Recommendation, Recommender
from bookrec.recsys.data import ReaderHistory
from bookrec.serving.books import BookCard, BookCards
from bookrec.serving.schemas import RecommendationList
from bookrec.serving.service import describe, plain_list_json

TITLES = [
    'The "score":0.0, Affair',  # the cut marker inside a title
    "Cien años de soledad",
    "Back\\slash \u2028 line\tand tab",
    "戦争と平和",
    "",
]


def cards() -> BookCards:
    found = {
        book_id: BookCard.of(
            book_id, title, f"Author {book_id}", None if book_id % 2 else f"https://x/{book_id}.jpg"
        )
        for book_id, title in enumerate(TITLES, start=1)
    }
    return BookCards(found, ())


def test_plain_list_json_is_byte_for_byte_what_the_models_write() -> None:
    scores = [12.3456789, 1e-7, -0.5, 3.0, 1234567.0000004]
    picks = [Recommendation(book_id, score) for book_id, score in enumerate(scores, start=1)]
    picks.insert(2, Recommendation(99, 9.0))  # a book deleted since training is skipped
    model = cast(Recommender, cast(Any, None))  # not asked: no reasons without explain
    for k in (1, 3, 5, 10):
        items = describe(cards(), model, picks, ReaderHistory.empty(), False)[:k]
        expected = RecommendationList(strategy="personal", model_version="7", items=items)
        written = plain_list_json(cards(), "personal", "7", picks, k)
        assert written == expected.model_dump_json().encode()


def test_an_empty_list_is_valid_json() -> None:
    expected = RecommendationList(strategy="personal", model_version="1", items=[])
    assert plain_list_json(cards(), "personal", "1", [], 10) == expected.model_dump_json().encode()
