"""Recommendation lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from bookrec.api.deps import KQuery, ModelDep, SessionDep
from bookrec.recsys.data import ReaderHistory
from bookrec.recsys.popularity import PopularityRecommender
from bookrec.serving.schemas import RecommendationList
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
