"""Recommendation lists: personal (for me, for a data set reader, in batches), popular, trending.

Answers come from the worker's serving engine: the reader's activity stamp is the only query
on the way (plus their rows and tag/author name lookups when a list must be scored); a
reader who has not acted since training gets their precomputed list; scoring runs in the
thread pool, and scored lists are cached. The list routes are the service's hot path, so
each takes few dependencies and reads its query in one validation (see `_answer`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bookrec.api import access
from bookrec.api.deps import ModelDep, ServingDep, SessionDep, get_model
from bookrec.api.query import QueryModel
from bookrec.api.routers.auth import UNAUTHORIZED
from bookrec.api.schemas import MAX_K, PROBLEM
from bookrec.api.state import AppState
from bookrec.errors import NotFound
from bookrec.interactions import repository as interactions
from bookrec.serving.engine import LoadedModel
from bookrec.serving.schemas import RecommendationList, RecommendedBook
from bookrec.serving.service import (
    FilterRequest,
    ListRequest,
    Strategy,
    build_list,
    ready_list,
    scored_list,
)

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


class FilterQuery(BaseModel):
    """Filters every list route takes, as query parameters.

    Each route reads its query as one model in one validation (`api.query`): separate
    parameters cost tens of microseconds per request more.
    """

    tag: list[str] | None = Field(
        None, max_length=20, description="Only books with any of these tags"
    )
    language: str | None = Field(None, max_length=16, description="Language code, e.g. eng")
    year_min: int | None = Field(None, ge=-5000, le=2100)
    year_max: int | None = Field(None, ge=-5000, le=2100)
    exclude_author: list[str] | None = Field(
        None, max_length=20, description="Leave out books by these authors"
    )

    def filters(self) -> FilterRequest:
        return FilterRequest(
            tags=tuple(self.tag or ()),
            language=self.language,
            year_min=self.year_min,
            year_max=self.year_max,
            exclude_authors=tuple(self.exclude_author or ()),
        )


class SimilarQuery(FilterQuery):
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many books, 1 to {MAX_K}")


class ListQuery(SimilarQuery):
    explain: bool = Field(False, description="Attach human-readable reasons to each book")

    def request(self, strategy: Strategy) -> ListRequest:
        return ListRequest(strategy, self.k, self.filters(), self.explain)


class PersonalQuery(ListQuery):
    diversity: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="0 ranks by relevance only; up to 1 trades relevance for less alike books",
    )

    def request(self, strategy: Strategy) -> ListRequest:
        return replace(super().request(strategy), diversity=self.diversity)


class MyListQuery(PersonalQuery):
    strategy: Strategy = Field(
        "personal", description="personal (the active model), popular or trending"
    )


SIMILAR_QUERY = QueryModel(SimilarQuery)
LIST_QUERY = QueryModel(ListQuery)
PERSONAL_QUERY = QueryModel(PersonalQuery)
MY_LIST_QUERY = QueryModel(MyListQuery)
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"X-Model-Version": {"description": "The model version that answered"}}},
    422: {**PROBLEM, "description": "A parameter is out of range or unknown"},
    503: {**PROBLEM, "description": "No trained model is active yet"},
}
BACKEND: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No valid API key or bearer token"},
    403: {**PROBLEM, "description": "The key lacks the scope, or the account is not an admin"},
}
MAX_BATCH = 100
DatasetUserId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def list_response(body: bytes, loaded: LoadedModel, source: str) -> Response:
    """A finished list as JSON, with the model version that made it and where it came from
    (`X-Cache`: hit, precomputed or miss)."""
    return Response(
        content=body,
        media_type="application/json",
        headers={"X-Model-Version": loaded.version, "X-Cache": source},
    )


@dataclass(frozen=True)
class Answering:
    """The worker's state and the model that answers: one dependency for the list routes,
    where two would each cost FastAPI's per-dependency work on the hot path."""

    state: AppState
    loaded: LoadedModel


async def answering(request: Request) -> Answering:
    return Answering(request.app.state.bookrec, await get_model(request))


AnsweringDep = Annotated[Answering, Depends(answering)]


@dataclass(frozen=True)
class _Found:
    key: str
    body: bytes | None
    source: str
    reader: tuple[int, str] | None


def _look_up(
    state: AppState,
    loaded: LoadedModel,
    request: ListRequest,
    reader_id: int | None,
    external_id: int | None,
) -> _Found:
    """Find the reader (one query: id and activity stamp), then a list needing no scoring."""
    serving = state.serving
    reader = None
    if reader_id is not None or external_id is not None:
        if serving.stamps is not None:  # on the event loop, on its own connection
            reader = serving.stamps(reader_id=reader_id, external_id=external_id)
        else:
            with state.engine.connect() as connection:
                reader = interactions.activity_stamp(
                    connection, reader_id=reader_id, external_id=external_id
                )
        if reader is None:
            raise NotFound("user", external_id if external_id is not None else reader_id)
    key, body, source = ready_list(loaded, serving.cards.cards, serving.cache, request, reader)
    return _Found(key, body, source, reader)


def _score(state: AppState, loaded: LoadedModel, request: ListRequest, found: _Found) -> bytes:
    """Read the reader's activity and score their list (runs in the thread pool)."""
    with state.engine.connect() as connection:
        filters = (
            None
            if request.filters == FilterRequest()
            else request.filters.resolve(Session(bind=connection))
        )
        activity = (
            interactions.activity_of(connection, reader_id=found.reader[0])
            if found.reader is not None
            else None
        )
        serving = state.serving
        return scored_list(
            loaded, serving.cards.cards, serving.cache, found.key, request, filters, activity
        )


async def _answer(
    answering: Answering,
    request: ListRequest,
    *,
    reader_id: int | None = None,
    external_id: int | None = None,
) -> Response:
    """A list for everyone, or for one reader (by reader id or data set user id).

    The look-up (one query, the cache, precomputed lists) runs on the event loop when the
    serving engine says it may (SQLite: tens of microseconds, less than a thread-pool hop);
    otherwise, and for scoring always, in the thread pool.
    """
    state, loaded = answering.state, answering.loaded
    arguments = (state, loaded, request, reader_id, external_id)
    if state.serving.lookups_inline:
        found = _look_up(*arguments)
    else:
        found = await run_in_threadpool(_look_up, *arguments)
    body = found.body
    if body is None:
        body = await run_in_threadpool(_score, state, loaded, request, found)
    return list_response(body, loaded, found.source)


@router.get(
    "/popular",
    summary="Most liked books of all time",
    response_model=RecommendationList,
    responses=LIST_RESPONSES,
    openapi_extra=LIST_QUERY.openapi_extra,
)
async def popular(
    answering: AnsweringDep, query: Annotated[ListQuery, LIST_QUERY.depends]
) -> Response:
    return await _answer(answering, query.request("popular"))


@router.get(
    "/trending",
    summary="Books liked most lately (time-decayed)",
    response_model=RecommendationList,
    responses=LIST_RESPONSES,
    openapi_extra=LIST_QUERY.openapi_extra,
)
async def trending(
    answering: AnsweringDep, query: Annotated[ListQuery, LIST_QUERY.depends]
) -> Response:
    return await _answer(answering, query.request("trending"))


@router.get(
    "/me",
    summary="Your personal recommendations, from everything you rated and shelved until now",
    response_model=RecommendationList,
    responses={**LIST_RESPONSES, **UNAUTHORIZED},
    openapi_extra=MY_LIST_QUERY.openapi_extra,
)
async def for_me(
    user: access.Reader,
    answering: AnsweringDep,
    query: Annotated[MyListQuery, MY_LIST_QUERY.depends],
) -> Response:
    return await _answer(answering, query.request(query.strategy), reader_id=user.reader_id)


@router.get(
    "/users/{user_id}",
    summary="Recommendations for a data set reader (an app backend's API key, or an admin)",
    response_model=RecommendationList,
    responses={
        **LIST_RESPONSES,
        **BACKEND,
        404: {**PROBLEM, "description": "No reader with this user id"},
    },
    openapi_extra=PERSONAL_QUERY.openapi_extra,
)
async def for_user(
    principal: access.Backend,
    answering: AnsweringDep,
    user_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The data set's user id")],
    query: Annotated[PersonalQuery, PERSONAL_QUERY.depends],
) -> Response:
    return await _answer(answering, query.request("personal"), external_id=user_id)


class BatchRequest(BaseModel):
    user_ids: list[DatasetUserId] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"Data set user ids, at most {MAX_BATCH}"
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many books each, 1 to {MAX_K}")


class UserRecommendations(BaseModel):
    user_id: int
    items: list[RecommendedBook]


class BatchRecommendations(BaseModel):
    strategy: str
    model_version: str
    results: list[UserRecommendations]
    unknown_user_ids: list[int] = Field(description="Requested ids with no reader")


@router.post(
    "/batch",
    summary="Recommendations for up to 100 data set readers at once",
    responses={**BACKEND, 422: PROBLEM},
)
def batch(
    principal: access.Backend,
    session: SessionDep,
    serving: ServingDep,
    loaded: ModelDep,
    response: Response,
    body: BatchRequest,
) -> BatchRecommendations:
    user_ids = list(dict.fromkeys(body.user_ids))
    connection = session.connection()
    request = ListRequest("personal", body.k)
    results, unknown = [], []
    for user_id in user_ids:
        activity = interactions.activity_of(connection, external_id=user_id)
        if activity is None:
            unknown.append(user_id)
            continue
        listing = build_list(loaded, serving.cards.cards, request, None, activity)
        results.append(UserRecommendations(user_id=user_id, items=listing.items))
    response.headers["X-Model-Version"] = loaded.version
    return BatchRecommendations(
        strategy="personal",
        model_version=loaded.version,
        results=results,
        unknown_user_ids=unknown,
    )
