"""Recommendation lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from bookrec.api.deps import KQuery, ModelDep, SessionDep
from bookrec.recsys.data import ReaderHistory
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


@router.get("/popular", summary="Most liked books of all time")
def popular(
    session: SessionDep,
    loaded: ModelDep,
    response: Response,
    filters: FilterDep,
    k: KQuery = 10,
    explain: ExplainQuery = False,
) -> RecommendationList:
    history = ReaderHistory.empty()
    picks = loaded.popular.recommend(history, k, filters=filters.resolve(session))
    response.headers["X-Model-Version"] = loaded.version
    return RecommendationList(
        strategy="popular",
        model_version=loaded.version,
        items=describe(session, loaded.popular, picks, history, explain),
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
    history = ReaderHistory.empty()
    picks = loaded.trending.recommend(history, k, filters=filters.resolve(session))
    response.headers["X-Model-Version"] = loaded.version
    return RecommendationList(
        strategy="trending",
        model_version=loaded.version,
        items=describe(session, loaded.trending, picks, history, explain),
    )
