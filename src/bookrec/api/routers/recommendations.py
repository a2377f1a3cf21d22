"""Recommendation lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from bookrec.api import access
from bookrec.api.deps import KQuery, ModelDep, SessionDep
from bookrec.api.schemas import MAX_K, Problem
from bookrec.errors import NotFound
from bookrec.interactions import repository as interactions
from bookrec.recsys.data import ReaderHistory
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.serving.engine import LoadedModel
from bookrec.serving.schemas import RecommendationList, RecommendedBook
from bookrec.serving.service import FilterRequest, describe

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


def filter_request(
    tag: Annotated[
        list[str] | None, Query(max_length=20, description="Only books with any of these tags")
    ] = None,
    language: Annotated[
        str | None, Query(max_length=16, description="Language code, e.g. eng")
    ] = None,
    year_min: Annotated[int | None, Query(ge=-5000, le=2100)] = None,
    year_max: Annotated[int | None, Query(ge=-5000, le=2100)] = None,
    exclude_author: Annotated[
        list[str] | None, Query(max_length=20, description="Leave out books by these authors")
    ] = None,
) -> FilterRequest:
    return FilterRequest(
        tags=tuple(tag or ()),
        language=language,
        year_min=year_min,
        year_max=year_max,
        exclude_authors=tuple(exclude_author or ()),
    )


FilterDep = Annotated[FilterRequest, Depends(filter_request)]
ExplainQuery = Annotated[bool, Query(description="Attach human-readable reasons to each book")]


def _everyone_list(
    strategy: str,
    model: PopularityRecommender,
    version: str,
    session: Session,
    response: Response,
    filters: FilterRequest,
    k: int,
    explain: bool,
) -> RecommendationList:
    """A list that is the same for every reader (popular, trending), filtered."""
    history = ReaderHistory.empty()
    picks = model.recommend(history, k, filters=filters.resolve(session))
    response.headers["X-Model-Version"] = version
    return RecommendationList(
        strategy=strategy,
        model_version=version,
        items=describe(session, model, picks, history, explain),
    )


@router.get("/popular", summary="Most liked books of all time")
def popular(
    session: SessionDep,
    loaded: ModelDep,
    response: Response,
    filters: FilterDep,
    k: KQuery = 10,
    explain: ExplainQuery = False,
) -> RecommendationList:
    return _everyone_list(
        "popular", loaded.popular, loaded.version, session, response, filters, k, explain
    )


@router.get("/trending", summary="Books liked most lately (time-decayed)")
def trending(
    session: SessionDep,
    loaded: ModelDep,
    response: Response,
    filters: FilterDep,
    k: KQuery = 10,
    explain: ExplainQuery = False,
) -> RecommendationList:
    return _everyone_list(
        "trending", loaded.trending, loaded.version, session, response, filters, k, explain
    )


PROBLEM: dict[str, Any] = {"model": Problem, "content": {"application/problem+json": {}}}
BACKEND: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No valid API key or bearer token"},
    403: {**PROBLEM, "description": "The key lacks the scope, or the account is not an admin"},
}
MAX_BATCH = 100
DatasetUserId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _personal(
    session: Session,
    loaded: LoadedModel,
    reader_id: int,
    k: int,
    filters: FilterRequest | None = None,
    explain: bool = False,
) -> list[RecommendedBook]:
    """The active model's list for one reader, from their live ratings; their shelf is left out."""
    connection = session.connection()
    history = interactions.history_of(connection, reader_id)
    shelf = interactions.shelf_of(connection, reader_id)
    resolved = None if filters is None else filters.resolve(session)
    picks = loaded.model.recommend(history, k, exclude=shelf, filters=resolved)
    return describe(session, loaded.model, picks, history, explain)


@router.get(
    "/users/{user_id}",
    summary="Recommendations for a data set reader (an app backend's API key, or an admin)",
    responses={**BACKEND, 404: {**PROBLEM, "description": "No reader with this user id"}},
)
def for_user(
    principal: access.Backend,
    session: SessionDep,
    loaded: ModelDep,
    response: Response,
    filters: FilterDep,
    user_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The data set's user id")],
    k: KQuery = 10,
    explain: ExplainQuery = False,
) -> RecommendationList:
    reader_id = interactions.reader_ids_by_external(session.connection(), [user_id]).get(user_id)
    if reader_id is None:
        raise NotFound("user", user_id)
    response.headers["X-Model-Version"] = loaded.version
    return RecommendationList(
        strategy="personal",
        model_version=loaded.version,
        items=_personal(session, loaded, reader_id, k, filters, explain),
    )


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
    loaded: ModelDep,
    response: Response,
    body: BatchRequest,
) -> BatchRecommendations:
    user_ids = list(dict.fromkeys(body.user_ids))
    readers = interactions.reader_ids_by_external(session.connection(), user_ids)
    response.headers["X-Model-Version"] = loaded.version
    return BatchRecommendations(
        strategy="personal",
        model_version=loaded.version,
        results=[
            UserRecommendations(
                user_id=user_id, items=_personal(session, loaded, readers[user_id], body.k)
            )
            for user_id in user_ids
            if user_id in readers
        ],
        unknown_user_ids=[user_id for user_id in user_ids if user_id not in readers],
    )
