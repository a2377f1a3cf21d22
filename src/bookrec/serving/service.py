"""Recommendation answers: filters in; books with titles, scores and reasons out, cached.

Everything here works from memory (the loaded model, the book cards, the cache) plus the
reader's activity, which the caller reads in one query. Lists are built as the response
body (JSON bytes) so a cache hit is sent without touching a model or pydantic again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from bookrec.catalog import service as catalog
from bookrec.errors import InvalidInput
from bookrec.interactions.repository import ReaderActivity
from bookrec.recsys.base import Recommendation, Recommender, ScoringRecommender
from bookrec.recsys.data import Filters, ReaderHistory
from bookrec.serving.books import BookCards
from bookrec.serving.cache import RecommendationCache, cache_key
from bookrec.serving.engine import LoadedModel
from bookrec.serving.schemas import RecommendationList, RecommendedBook

Strategy = Literal["personal", "popular", "trending"]
STRATEGIES: tuple[str, ...] = ("personal", "popular", "trending")


@dataclass(frozen=True)
class FilterRequest:
    """Filters as a client names them (tag and author names)."""

    tags: tuple[str, ...] = ()
    language: str | None = None
    year_min: int | None = None
    year_max: int | None = None
    exclude_authors: tuple[str, ...] = ()

    def check(self) -> None:
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise InvalidInput(
                f"year_min ({self.year_min}) is after year_max ({self.year_max})", field="year_min"
            )

    def resolve(self, session: Session) -> Filters:
        """Names to ids; a database query only when tags or authors are named."""
        self.check()
        return Filters(
            tags=tuple(catalog.tag_ids_named(session, self.tags)) if self.tags else (),
            language=self.language,
            year_min=self.year_min,
            year_max=self.year_max,
            exclude_authors=tuple(catalog.author_ids_named(session, self.exclude_authors)),
        )


@dataclass(frozen=True)
class ListRequest:
    """What a client asked for, beyond who they are."""

    strategy: Strategy = "personal"
    k: int = 10
    filters: FilterRequest = FilterRequest()
    explain: bool = False
    diversity: float = 0.0

    def is_plain(self) -> bool:
        """The model's own list, unfiltered and unexplained: what training precomputes."""
        return (
            self.strategy == "personal"
            and self.filters == FilterRequest()
            and not self.explain
            and self.diversity == 0
        )

    def digest(self) -> str:
        return hashlib.blake2b(repr(self).encode(), digest_size=8).hexdigest()


def describe(
    cards: BookCards,
    model: Recommender,
    recommendations: Sequence[Recommendation],
    history: ReaderHistory,
    explain: bool,
) -> list[RecommendedBook]:
    """Attach titles, authors and (optionally) reasons to a model's list, keeping its order."""
    items = []
    for recommendation in recommendations:
        card = cards.get(recommendation.book_id)
        if card is None:  # deleted since the model was trained
            continue
        items.append(
            RecommendedBook(
                book_id=card.book_id,
                title=card.title,
                authors=card.authors,
                score=round(recommendation.score, 6),
                image_url=card.image_url,
                reasons=model.explain(history, card.book_id) if explain else None,
            )
        )
    return items


def plain_list_json(
    cards: BookCards,
    strategy: str,
    model_version: str,
    recommendations: Sequence[Recommendation],
    k: int,
) -> bytes:
    """An unexplained list's JSON body from the cards' stored JSON: byte for byte what
    `describe` and `RecommendationList.model_dump_json` give, at a fraction of the cost."""
    items = []
    for recommendation in recommendations:
        card = cards.get(recommendation.book_id)
        if card is not None:  # deleted since the model was trained
            items.append(card.item_json(recommendation.score))
            if len(items) == k:
                break
    empty = RecommendationList(strategy=strategy, model_version=model_version, items=[])
    return empty.model_dump_json().encode().removesuffix(b"]}") + b",".join(items) + b"]}"


def model_for(loaded: LoadedModel, strategy: str) -> ScoringRecommender:
    if strategy == "popular":
        return loaded.popular
    if strategy == "trending":
        return loaded.trending
    return loaded.model


def build_list(
    loaded: LoadedModel,
    cards: BookCards,
    request: ListRequest,
    filters: Filters | None,
    activity: ReaderActivity | None,
) -> RecommendationList:
    """Score and describe one list; the reader's rated and shelved books never appear."""
    history = activity.history if activity is not None else ReaderHistory.empty()
    shelf = activity.shelf if activity is not None else None
    model = model_for(loaded, request.strategy)
    # a little slack: books deleted since training are dropped when described
    picks = model.recommend(
        history, request.k + 5, exclude=shelf, filters=filters, diversity=request.diversity
    )
    items = describe(cards, model, picks, history, request.explain)[: request.k]
    return RecommendationList(strategy=request.strategy, model_version=loaded.version, items=items)


def ready_list(
    loaded: LoadedModel,
    cards: BookCards,
    cache: RecommendationCache,
    request: ListRequest,
    reader: tuple[int, str] | None = None,
) -> tuple[str, bytes | None, str]:
    """(cache key, body, source) for a list that needs no scoring, else (key, None, "miss");
    the key is "" for a precomputed answer, which is not cached.

    Sources: "precomputed" (the version's list for a reader whose activity has not changed
    since training; asked first, as it is in the worker's memory and the cache may need a
    Redis round trip) or "hit" (the cache). `reader` is (reader id, activity stamp): the
    stamp changes with every rating, un-rating or shelving, so it is part of the key.
    """
    request.filters.check()
    if reader is not None and loaded.precomputed is not None and request.is_plain():
        picks = loaded.precomputed.lookup(*reader, request.k + 5)
        if picks is not None:
            # not cached (so no key): rebuilding it costs about what a cache entry would
            body = plain_list_json(cards, request.strategy, loaded.version, picks, request.k)
            return "", body, "precomputed"
    key = cache_key((loaded.version, request.strategy, request.digest(), *(reader or ("-", "-"))))
    cached = cache.get(key)
    return key, cached, "miss" if cached is None else "hit"


def scored_list(
    loaded: LoadedModel,
    cards: BookCards,
    cache: RecommendationCache,
    key: str,
    request: ListRequest,
    filters: Filters | None,
    activity: ReaderActivity | None,
) -> bytes:
    """Score, describe and cache a list (CPU work: callers run it in the thread pool)."""
    body = build_list(loaded, cards, request, filters, activity).model_dump_json().encode()
    cache.put(key, body)
    return body


def similar_body(
    loaded: LoadedModel,
    cards: BookCards,
    cache: RecommendationCache,
    book_id: int,
    k: int,
    filters: FilterRequest,
    resolve_filters: Callable[[FilterRequest], Filters],
) -> tuple[bytes, str]:
    """Books like `book_id` by the active model, as a JSON body (cached like lists)."""
    filters.check()
    request_digest = hashlib.blake2b(repr((k, filters)).encode(), digest_size=8).hexdigest()
    key = cache_key((loaded.version, "similar", book_id, request_digest))
    body = cache.get(key)
    if body is not None:
        return body, "hit"
    resolved = None if filters == FilterRequest() else resolve_filters(filters)
    picks = loaded.model.similar(book_id, k + 5, filters=resolved)
    items = describe(cards, loaded.model, picks, ReaderHistory.empty(), explain=False)[:k]
    listing = RecommendationList(strategy="similar", model_version=loaded.version, items=items)
    body = listing.model_dump_json().encode()
    cache.put(key, body)
    return body, "miss"
