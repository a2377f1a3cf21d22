"""The one place that answers a reader's list: `RecommendationService`.

Every list a reader gets goes through it: the API's list routes (`/recommendations/me`,
`/users/{id}`, `/popular`, `/trending`, `/batch`), `bookrec recommend` for one reader or a
file of them, and training's precomputed lists (`score_readers`, the same scoring in bulk).
How a list is answered, cheapest first:

1. look-up (no scoring): the reader's id and activity version (one indexed row); then the
   list training precomputed for them, if their activity has not changed since and the
   request is the model's plain list; else the cache, keyed by model version, request and
   activity version;
2. scoring: the reader's ratings and shelf are read, the catalogue scored (filters applied
   before the top-k cut, diversity re-ranking, rated and shelved books left out), reasons
   written, and the body cached.

Lists are built as the response body (JSON bytes), so a precomputed list or a cache hit is
sent without touching a model or pydantic again.

Books added or deleted since the model was trained (`serving.additions.CatalogueView`):
a deleted book's card is gone, so no list describes it (precomputed lists are filtered
through the cards on the way out, scored lists in `describe`), and the view's `signature`
joins the cache key, so a list cached before the change is not served after it. New books
are blended into unfiltered personal lists of readers whose taste they match
(`recsys.coldstart.blend_new_books`): a precomputed list is then completed with them after
reading the reader's history. None of this costs anything while the catalogue is the
model's (the signature is empty and no view has added books).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, cast

import numpy as np
import scipy.sparse as sp
from anyio import CapacityLimiter, to_thread
from sqlalchemy.orm import Session

from bookrec.catalog import service as catalog
from bookrec.db.session import SessionFactory, unit_of_work
from bookrec.errors import InvalidInput, ModelUnavailable, NotFound
from bookrec.observability.metrics import count_answer, observe_scoring
from bookrec.readers import repository as readers
from bookrec.readers.repository import ActivityVersions, ReaderActivity, ReaderVersion
from bookrec.recsys.base import Recommendation, Recommender, ScoringRecommender
from bookrec.recsys.coldstart import TasteMatch, blend_new_books, liked_books, merge_similar
from bookrec.recsys.content import resemblances
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.serving.additions import AddedBooks, CatalogueChanges, CatalogueView
from bookrec.serving.books import BookCard, BookCards, CardStore
from bookrec.serving.cache import RecommendationCache, cache_key
from bookrec.serving.experiments import ExperimentStore, ExposureLog
from bookrec.serving.loaded import LoadedModel
from bookrec.serving.schemas import RecommendationList, RecommendedBook

Strategy = Literal["personal", "popular", "trending"]
Source = Literal["precomputed", "hit", "miss"]
#: Scored beyond k so that books deleted since training can be dropped from a full list.
SLACK = 5


@dataclass(frozen=True)
class FilterRequest:
    """Filters as a client names them (tag and author names)."""

    tags: tuple[str, ...] = ()
    language: str | None = None
    year_min: int | None = None
    year_max: int | None = None
    exclude_authors: tuple[str, ...] = ()

    def check(self) -> None:
        catalog.language_filter(self.language)
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise InvalidInput(
                f"year_min ({self.year_min}) is after year_max ({self.year_max})", field="year_min"
            )

    def resolve(self, session: Session) -> Filters | None:
        """Names to ids (a query only when tags or authors are named); None: no filter."""
        self.check()
        if self == FilterRequest():
            return None
        return Filters(
            tags=tuple(catalog.tag_ids_named(session, self.tags)) if self.tags else (),
            language=catalog.language_filter(self.language),
            year_min=self.year_min,
            year_max=self.year_max,
            exclude_authors=tuple(catalog.author_ids_named(session, self.exclude_authors)),
        )


#: The longest list one request may ask for (API and CLI alike).
MAX_K = 100


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


@dataclass(frozen=True)
class ReaderRef:
    """Whom a list is for: a reader id (an account's) or a data set user id."""

    reader_id: int | None = None
    external_id: int | None = None

    def not_found(self) -> NotFound:
        if self.external_id is not None:
            return NotFound("user", self.external_id)
        return NotFound("reader", self.reader_id)


@dataclass(frozen=True)
class Assignment:
    """The experiment variant a reader's personal list comes from."""

    experiment_id: int
    variant: str


def variant_of(assignment: Assignment | None) -> str | None:
    return None if assignment is None else assignment.variant


@dataclass(frozen=True)
class Answer:
    """A finished list: the response body, where it came from, the model version that made it
    (and the experiment variant, while one runs)."""

    body: bytes
    source: Source
    model_version: int
    assignment: Assignment | None = None

    def listing(self) -> RecommendationList:
        return RecommendationList.model_validate_json(self.body)


@dataclass(frozen=True)
class Lookup:
    """What the look-up found, and what scoring needs when it found no answer."""

    loaded: LoadedModel
    request: ListRequest
    reader: ReaderVersion | None
    key: str
    answer: Answer | None
    assignment: Assignment | None = None
    #: the reader's precomputed list, when new books are still to be blended into it
    picks: list[Recommendation] | None = None
    #: books added since the model's training, to blend into this list (None: none)
    added: AddedBooks | None = None


class ModelSource(Protocol):
    def current(self) -> LoadedModel | None: ...


class RecommendationService:
    """Answers lists from a worker's (or a command's) loaded model, book cards and cache.

    `versions`, when given, reads activity versions on the event loop's own connection
    (SQLite without Redis: a local read, cheaper than a thread hop); `answer_async` then looks
    up on the loop. Every other look-up, and all scoring, use sessions (any thread).
    `answer_async` scores at most `scoring_threads` lists at once; the others wait in turn.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        models: ModelSource,
        cards: CardStore,
        cache: RecommendationCache,
        versions: ActivityVersions | None = None,
        experiments: ExperimentStore | None = None,
        exposures: ExposureLog | None = None,
        scoring_threads: int = 1,
    ) -> None:
        self.sessions = sessions
        self.models = models
        self.cards = cards
        self.cache = cache
        self.versions = versions
        self.experiments = experiments
        self.exposures = exposures
        self.changes = CatalogueChanges(sessions)
        self.scoring_threads = scoring_threads
        self._scoring: CapacityLimiter | None = None

    def scoring_limiter(self) -> CapacityLimiter:
        """Threads that may score lists at once (made on the event loop that first asks).

        Scoring holds the GIL for much of its time and fills the CPU caches with the model's
        rows: eight lists scored side by side in one worker cost ~2x the CPU of one after the
        other and their p99 latency doubles (docs/benchmarks.md); a queue in front of one
        thread answers the same requests sooner."""
        if self._scoring is None:
            self._scoring = CapacityLimiter(self.scoring_threads)
        return self._scoring

    @property
    def lookups_inline(self) -> bool:
        """Whether `answer_async` looks up on the event loop."""
        return self.versions is not None

    def model(self) -> LoadedModel:
        loaded = self.models.current()
        if loaded is None:
            raise ModelUnavailable(
                "no trained model is active yet: run `bookrec train` (or POST /api/v1/admin/train)"
            )
        return loaded

    def refresh_catalogue(self) -> CatalogueView | None:
        """Reload the book cards if the catalogue changed (one indexed aggregate), and the
        view of books added and deleted since the model's training with them."""
        self.cards.refresh()
        return self.changes.refresh(self.models.current(), self.cards.cards)

    # -- one reader's list -----------------------------------------------------------------

    def find(
        self,
        request: ListRequest,
        reader: ReaderRef | None = None,
        loaded: LoadedModel | None = None,
        versions: ActivityVersions | None = None,
    ) -> Lookup:
        """The look-up: the reader's activity version, then a list that needs no scoring.

        `versions` reads the version on the calling thread's own connection (the event
        loop's); without it a session is used.
        """
        request.filters.check()
        loaded = loaded or self.model()
        version = None if reader is None else self._version_of(reader, versions)
        assignment = None
        store = self.experiments
        if version is not None and request.strategy == "personal" and store is not None:
            running = store.current()
            if running is not None:
                arm = running.arm_for(version.reader_id)
                assignment = Assignment(running.experiment_id, arm.name)
                request = replace(request, strategy=cast(Strategy, arm.strategy))
                if arm.model_version is not None and arm.model_version != loaded.number:
                    loaded = store.model(arm.model_version) or loaded
            elif store.default_strategy != "personal":
                request = replace(request, strategy=cast(Strategy, store.default_strategy))
        view = self.changes.for_model(loaded.number)
        added = None
        if (
            view is not None
            and view.added is not None
            and version is not None
            and request.strategy == "personal"
            and request.filters == FilterRequest()
        ):
            added = view.added
        picks = None
        if version is not None and loaded.precomputed is not None and request.is_plain():
            picks = loaded.precomputed.lookup(
                version.reader_id, version.activity_version, request.k + SLACK
            )
            if picks is not None and added is None:
                # not cached (so no key): rebuilding it costs about what a cache entry would
                body = plain_list_json(
                    self.cards.cards, request.strategy, loaded.number, picks, request.k, assignment
                )
                count_answer(request.strategy, "precomputed", variant_of(assignment))
                found = Answer(body, "precomputed", loaded.number, assignment)
                return Lookup(loaded, request, version, "", found, assignment)
        who = ("-", "-") if version is None else (version.reader_id, version.activity_version)
        kind: str = request.strategy
        if assignment is not None:  # one variant's list is never another's cache entry
            kind = f"{kind}@{assignment.experiment_id}.{assignment.variant}"
        signature = "" if view is None else view.signature
        key = cache_key((loaded.number, kind, request.digest() + signature, *who))
        cached = self.cache.get(key)
        if cached is None:
            return Lookup(loaded, request, version, key, None, assignment, picks, added)
        count_answer(request.strategy, "hit", variant_of(assignment))
        answer = Answer(cached, "hit", loaded.number, assignment)
        return Lookup(loaded, request, version, key, answer, assignment)

    def _version_of(self, reader: ReaderRef, versions: ActivityVersions | None) -> ReaderVersion:
        if versions is not None:
            found = versions(reader_id=reader.reader_id, external_id=reader.external_id)
        else:
            with unit_of_work(self.sessions) as session:
                found = readers.activity_version(
                    session.connection(), reader_id=reader.reader_id, external_id=reader.external_id
                )
        if found is None:
            raise reader.not_found()
        return found

    def score(self, lookup: Lookup) -> Answer:
        """The look-up's answer, or the list scored now (CPU work: not on an event loop)."""
        if lookup.answer is not None:
            return lookup.answer
        request, loaded = lookup.request, lookup.loaded
        started = time.perf_counter()
        with unit_of_work(self.sessions) as session:
            filters = request.filters.resolve(session)
            activity = (
                None
                if lookup.reader is None
                else readers.activity_of(session.connection(), lookup.reader.reader_id)
            )
        listing = build_list(
            loaded, self.cards.cards, request, filters, activity, lookup.picks, lookup.added
        )
        if lookup.assignment is not None:
            listing.experiment_id = lookup.assignment.experiment_id
            listing.variant = lookup.assignment.variant
        body = listing.model_dump_json().encode()
        observe_scoring(request.strategy, time.perf_counter() - started)
        count_answer(request.strategy, "miss", variant_of(lookup.assignment))
        self.cache.put(lookup.key, body)
        return Answer(body, "miss", loaded.number, lookup.assignment)

    def _exposed(self, lookup: Lookup, answer: Answer) -> Answer:
        """Log the books an experiment's list shows (queued, written off the request path)."""
        if answer.assignment is not None and self.exposures is not None and lookup.reader:
            self.exposures.log(
                answer.assignment.experiment_id,
                lookup.reader.reader_id,
                answer.assignment.variant,
                answer.body,
            )
        return answer

    def answer(self, request: ListRequest, reader: ReaderRef | None = None) -> Answer:
        """A list for everyone (`reader` None) or for one reader; NotFound for no such reader."""
        lookup = self.find(request, reader)
        return self._exposed(lookup, self.score(lookup))

    async def answer_async(self, request: ListRequest, reader: ReaderRef | None = None) -> Answer:
        """`answer` for an event loop: the look-up inline when it is a local read, scoring
        in a worker thread."""
        if self.versions is not None:
            lookup = self.find(request, reader, versions=self.versions)
        else:
            lookup = await to_thread.run_sync(self.find, request, reader)
        if lookup.answer is not None:
            return self._exposed(lookup, lookup.answer)
        scored = await to_thread.run_sync(self.score, lookup, limiter=self.scoring_limiter())
        return self._exposed(lookup, scored)

    def answer_many(
        self, request: ListRequest, external_ids: Sequence[int]
    ) -> tuple[int, dict[int, Answer], list[int]]:
        """Lists for several data set readers by one model version: (that version, each known
        reader's answer, the unknown ids)."""
        loaded = self.model()
        answers: dict[int, Answer] = {}
        unknown: list[int] = []
        for external_id in dict.fromkeys(external_ids):
            try:
                lookup = self.find(request, ReaderRef(external_id=external_id), loaded)
            except NotFound:
                unknown.append(external_id)
                continue
            answers[external_id] = self._exposed(lookup, self.score(lookup))
        return loaded.number, answers, unknown

    # -- books like a book ---------------------------------------------------------------

    def similar(
        self, book_id: int, k: int, filters: FilterRequest, explain: bool = False
    ) -> Answer:
        """Books like `book_id` by the active model, cached like lists; NotFound for no such
        book. With `explain`, each says what it has in common with the book
        (`recsys.content.resemblances`)."""
        filters.check()
        loaded = self.model()
        # one indexed aggregate: a book added, edited or deleted through any worker counts
        # here at once
        self.cards.refresh()
        cards = self.cards.cards
        view = self.changes.refresh(loaded, cards)
        request_digest = hashlib.blake2b(
            repr((k, filters, explain)).encode(), digest_size=8
        ).hexdigest()
        key = cache_key((loaded.number, "similar", book_id, request_digest, *cards.stamp))
        body = self.cache.get(key)
        if body is not None:
            count_answer("similar", "hit")
            return Answer(body, "hit", loaded.number)
        started = time.perf_counter()
        if cards.get(book_id) is None:
            raise NotFound("book", book_id)
        with unit_of_work(self.sessions) as session:
            resolved = filters.resolve(session)
        model_catalog = loaded.model.require_catalog()
        added = None if view is None else view.added
        unfiltered = resolved is None or resolved.is_empty()
        if int(model_catalog.items.index([book_id])[0]) < 0:
            picks = (
                []
                if added is None
                else _similar_to_added(added, model_catalog, book_id, k + SLACK, resolved)
            )
        else:
            picks = loaded.model.similar(book_id, k + SLACK, filters=resolved)
            if added is not None and unfiltered:
                picks = _with_added_books(added, model_catalog, book_id, picks, k)
        reasons = (
            {}
            if added is None
            else _new_book_reasons(added, model_catalog, cards, book_id, picks[: k + SLACK])
        )
        items = describe(
            cards,
            loaded.model,
            picks,
            ReaderHistory.empty(),
            explain=False,
            reasons=reasons,
            limit=k,
        )
        if explain:  # the model's books: what each has in common with this one
            unexplained = [item.book_id for item in items if item.reasons is None]
            found = resemblances(model_catalog, book_id, unexplained)
            items = [
                item
                if item.reasons is not None
                else item.model_copy(update={"reasons": found.get(item.book_id, [])})
                for item in items
            ]
        listing = RecommendationList(strategy="similar", model_version=loaded.number, items=items)
        body = listing.model_dump_json().encode()
        observe_scoring("similar", time.perf_counter() - started)
        count_answer("similar", "miss")
        self.cache.put(key, body)
        return Answer(body, "miss", loaded.number)

    # -- many readers at once ------------------------------------------------------------

    def lists_for_users(
        self, external_ids: np.ndarray, k: int
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Every data set reader's plain list, scored in bulk (`bookrec recommend --batch`):
        (model version, book ids and scores as readers x k with -1 padding, which user ids
        are known). An unknown user id gets the cold-start list. The same lists the
        one-reader path gives."""
        from bookrec.readers.snapshot import load_interactions  # pyarrow: not in API workers

        loaded = self.model()
        with unit_of_work(self.sessions) as session:
            connection = session.connection()
            mapping = readers.reader_ids_by_external(connection, external_ids.tolist())
            interactions = load_interactions(connection, loaded.model.require_catalog().items)
            shelves = readers.all_shelves(connection)
        reader_ids = np.asarray([mapping.get(int(u), -1) for u in external_ids], dtype=np.int64)
        book_ids, scores = score_readers(loaded.model, interactions, reader_ids, k + SLACK, shelves)
        book_ids, scores = drop_deleted_books(book_ids, scores, self.cards.cards, k)
        return loaded.number, book_ids, scores, reader_ids >= 0


def _similar_to_added(
    added: AddedBooks, model_catalog: Catalog, book_id: int, k: int, filters: Filters | None
) -> list[Recommendation]:
    """Books like one the model has not seen: cold-start cosine over the model's catalogue
    and the other added books (those only without filters, which read the model's facts)."""
    row = added.row_of(book_id)
    if row is None:
        return []
    unfiltered = filters is None or filters.is_empty()
    allowed = None if unfiltered else filters.allowed(model_catalog)  # type: ignore[union-attr]
    others = (added.ids, added.vectors) if unfiltered else None
    return added.index.similar(
        added.vectors[row], k, allowed=allowed, others=others, exclude=book_id
    )


def _with_added_books(
    added: AddedBooks, model_catalog: Catalog, book_id: int, picks: list[Recommendation], k: int
) -> list[Recommendation]:
    """A catalogue book's similar list with the added books that beat its cut-off merged in
    (cosines in the cold-start space, scores on the model's: `coldstart.merge_similar`)."""
    row = int(model_catalog.items.index([book_id])[0])
    query = added.index.vectors[row]
    listed = model_catalog.items.index([p.book_id for p in picks])
    listed_cosines = np.asarray(
        (added.index.vectors[np.maximum(listed, 0)] @ query.T).toarray(), dtype=np.float64
    ).ravel()
    listed_cosines[listed < 0] = np.inf  # not in the model's catalogue: never displaced
    new_cosines = np.asarray((added.vectors @ query.T).toarray(), dtype=np.float64).ravel()
    return merge_similar(picks, listed_cosines, added.ids, new_cosines, k)


def _new_book_reasons(
    added: AddedBooks,
    model_catalog: Catalog,
    cards: BookCards,
    book_id: int,
    picks: Sequence[Recommendation],
) -> dict[int, list[str]]:
    """Why each added book of `book_id`'s similar list is there: it is new, and what it
    shares with the book."""
    _, query = added.vectors_of(model_catalog, np.asarray([book_id]))
    reasons: dict[int, list[str]] = {}
    for pick in picks:
        row = added.row_of(pick.book_id)
        if row is not None and query.shape[0]:
            shared = _shared_reasons(added, added.vectors[row], query, cards.get(pick.book_id))
            reasons[pick.book_id] = ["new in the catalogue", *shared]
    return reasons


def _shared_reasons(
    added: AddedBooks, vector: sp.csr_matrix, other: sp.csr_matrix, card: BookCard | None
) -> list[str]:
    """'also by A', 'also in the S series', 'shares tags: x, y': what two books have in
    common, names as the new book's card spells them."""
    reasons = []
    authors = added.index.shared(vector, other, "a")
    if authors and card is not None:
        spelled = {a.strip().casefold(): a.strip() for a in card.authors.split(",")}
        reasons.append("also by " + ", ".join(spelled.get(a, a) for a in authors[:2]))
    series = added.index.shared(vector, other, "s")
    if series:
        reasons.append(f"also in the {series[0]} series")
    tags = added.index.shared(vector, other, "t")
    if tags:
        reasons.append("shares tags: " + ", ".join(tags[:3]))
    return reasons


def drop_deleted_books(
    book_ids: np.ndarray, scores: np.ndarray, cards: BookCards, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first `k` books that still exist (as `describe` drops deleted books)."""
    known = np.isin(book_ids, np.fromiter(cards.cards, dtype=np.int64, count=len(cards)))
    order = np.argsort(~known, axis=1, kind="stable")[:, :k]  # known books first, in order
    kept = np.take_along_axis(known, order, axis=1)
    return (
        np.where(kept, np.take_along_axis(book_ids, order, axis=1), -1),
        np.where(kept, np.take_along_axis(scores, order, axis=1), 0.0).astype(np.float32),
    )


def score_readers(
    model: ScoringRecommender,
    interactions: Interactions,
    reader_ids: np.ndarray,
    k: int,
    shelves: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(book ids, scores), each readers x k, from every reader's ratings, their shelf left out:
    the lists `build_list` gives one at a time, in bulk (training precomputes them this way).

    Book id -1 pads a row with fewer than k candidates. A reader id of -1 (unknown reader)
    gets the cold-start list.
    """
    items = model.require_catalog().items
    histories = _history_matrix(interactions, items, reader_ids)
    exclude = None if shelves is None else _shelf_matrix(reader_ids, items, shelves)
    indices, scores = model.recommend_batch(histories, k, exclude=exclude)
    book_ids = np.where(indices >= 0, items.ids[np.maximum(indices, 0)], -1)
    return book_ids, scores


def _history_matrix(
    interactions: Interactions, items: IdMap, reader_ids: np.ndarray
) -> sp.csr_matrix:
    """Rows of the readers' ratings over the catalog (an unknown reader id: an empty row)."""
    rows = interactions.users.index(reader_ids)
    columns = items.index(interactions.items.ids[interactions.item_index])
    full = sp.csr_matrix(
        (interactions.rating, (interactions.user_index, columns)),
        shape=(len(interactions.users), len(items)),
        dtype=np.float32,
    )
    picked = full[np.maximum(rows, 0)]
    picked = picked.multiply((rows >= 0)[:, None].astype(np.float32)).tocsr()
    picked.eliminate_zeros()
    return picked


def _shelf_matrix(
    reader_ids: np.ndarray, items: IdMap, shelves: tuple[np.ndarray, np.ndarray]
) -> sp.csr_matrix:
    """Rows marking each reader's to-read shelf, never recommended back to them."""
    shelf_readers, shelf_books = shelves
    position = {int(r): i for i, r in enumerate(reader_ids.tolist()) if r >= 0}
    rows = np.asarray([position.get(int(r), -1) for r in shelf_readers], dtype=np.int64)
    columns = items.index(shelf_books)
    keep = (rows >= 0) & (columns >= 0)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], columns[keep])),
        shape=(len(reader_ids), len(items)),
    )


def describe(
    cards: BookCards,
    model: Recommender,
    recommendations: Sequence[Recommendation],
    history: ReaderHistory,
    explain: bool,
    reasons: Mapping[int, list[str]] | None = None,
    limit: int | None = None,
) -> list[RecommendedBook]:
    """Attach titles, authors and (optionally) reasons to a model's list, keeping its order:
    its first `limit` books that still exist (a list is asked for with slack for deleted ones;
    only the books shown are explained).

    `reasons` are those of books the model does not know (added since its training): they
    are attached whether or not the list is explained, as they say why an unknown book is
    there at all."""
    shown = [
        (recommendation, card)
        for recommendation in recommendations
        if (card := cards.get(recommendation.book_id)) is not None  # None: deleted since
    ][:limit]
    given = reasons or {}
    explained: dict[int, list[str]] = {}
    if explain:
        unexplained = [card.book_id for _, card in shown if card.book_id not in given]
        explained = dict(zip(unexplained, model.explain_many(history, unexplained), strict=True))
    items = []
    for recommendation, card in shown:
        why = given.get(card.book_id, explained.get(card.book_id))
        items.append(
            RecommendedBook(
                book_id=card.book_id,
                title=card.title,
                authors=card.authors,
                score=round(recommendation.score, 6),
                image_url=card.image_url,
                reasons=why,
            )
        )
    return items


def plain_list_json(
    cards: BookCards,
    strategy: str,
    model_version: int,
    recommendations: Sequence[Recommendation],
    k: int,
    assignment: Assignment | None = None,
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
    if assignment is not None:
        empty.experiment_id, empty.variant = assignment.experiment_id, assignment.variant
    head, _, tail = empty.model_dump_json().encode().partition(b'"items":[]')
    return head + b'"items":[' + b",".join(items) + b"]" + tail


def build_list(
    loaded: LoadedModel,
    cards: BookCards,
    request: ListRequest,
    filters: Filters | None,
    activity: ReaderActivity | None,
    picks: list[Recommendation] | None = None,
    added: AddedBooks | None = None,
) -> RecommendationList:
    """Score (unless `picks` are the model's list already) and describe one list, with the
    `added` books that match the reader's taste blended in; the reader's rated and shelved
    books never appear."""
    history = activity.history if activity is not None else ReaderHistory.empty()
    shelf = activity.shelf if activity is not None else None
    model = loaded.for_strategy(request.strategy)
    if picks is None:
        picks = model.recommend(
            history, request.k + SLACK, exclude=shelf, filters=filters, diversity=request.diversity
        )
    reasons: dict[int, list[str]] = {}
    if added is not None and activity is not None and (filters is None or filters.is_empty()):
        picks, matches = _blend(added, model.require_catalog(), cards, activity, picks, request.k)
        reasons = {
            m.book_id: _taste_reasons(added, model.require_catalog(), cards, m) for m in matches
        }
    items = describe(cards, model, picks, history, request.explain, reasons, limit=request.k)
    return RecommendationList(strategy=request.strategy, model_version=loaded.number, items=items)


def _blend(
    added: AddedBooks,
    model_catalog: Catalog,
    cards: BookCards,
    activity: ReaderActivity,
    picks: list[Recommendation],
    k: int,
) -> tuple[list[Recommendation], list[TasteMatch]]:
    """The list with the added books closest to what the reader liked in it (a few, see
    `coldstart.blend_new_books`); one small sparse product per list. A liked book deleted
    since is no reason to name."""
    liked_ids, liked_ratings = liked_books(activity.history)
    alive = np.fromiter((int(b) in cards.cards for b in liked_ids), bool, len(liked_ids))
    liked_ids, liked_ratings = liked_ids[alive], liked_ratings[alive]
    if not len(liked_ids):
        return picks, []
    with_vectors, vectors = added.vectors_of(model_catalog, liked_ids)
    ratings = liked_ratings[np.isin(liked_ids, with_vectors)]
    candidates = ~np.isin(added.ids, activity.history.book_ids) & ~np.isin(
        added.ids, activity.shelf
    )
    return blend_new_books(
        picks, k, added.ids, added.vectors, (with_vectors, vectors, ratings), candidates
    )


def _taste_reasons(
    added: AddedBooks, model_catalog: Catalog, cards: BookCards, match: TasteMatch
) -> list[str]:
    """'new in the catalogue; like "X", which you rated 5★', then what the two share."""
    liked = cards.get(match.liked_book_id)
    title = liked.title if liked is not None else str(match.liked_book_id)  # deleted just now
    done = f"rated {match.liked_rating:g}★" if match.liked_rating > 0 else "read"
    row = added.row_of(match.book_id)
    shared: list[str] = []
    if row is not None:
        _, other = added.vectors_of(model_catalog, np.asarray([match.liked_book_id]))
        if other.shape[0]:
            shared = _shared_reasons(added, added.vectors[row], other, cards.get(match.book_id))
    return [f'new in the catalogue; like "{title}", which you {done}', *shared]
