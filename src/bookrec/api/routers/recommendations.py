"""Recommendation lists: personal (for me, for a data set reader, in batches), popular, trending.

Each route is one call to the worker's `RecommendationService` (`serving.service`), which
looks the reader up, answers from the precomputed list or the cache when it can, and scores
otherwise. `X-Cache` says which: `precomputed`, `hit` or `miss` (scored now).

These routes are the service's hot path: each reads its query in one validation
(`api.query.QueryModel`, the same values, errors and OpenAPI parameters as FastAPI's own
query models), which measured ~60 µs less CPU per request (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from bookrec.api import access
from bookrec.api.deps import RecommendationsDep
from bookrec.api.query import QueryModel
from bookrec.api.routers.auth import UNAUTHORIZED
from bookrec.api.schemas import MAX_K, PROBLEM
from bookrec.serving.schemas import RecommendationList, RecommendedBook
from bookrec.serving.service import Answer, FilterRequest, ListRequest, ReaderRef, Strategy

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


class FilterQuery(BaseModel):
    """Filters every list route takes, as query parameters."""

    tag: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=20, description="Only books with any of these tags (≤ 20)"
    )
    language: str | None = Field(None, max_length=16, description="Language code, e.g. eng")
    year_min: int | None = Field(None, ge=-5000, le=2100)
    year_max: int | None = Field(None, ge=-5000, le=2100)
    exclude_author: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=20, description="Leave out books by these authors (≤ 20)"
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
    explain: bool = Field(False, description="Attach human-readable reasons to each book")


class ListQuery(SimilarQuery):
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
    200: {
        "headers": {
            "X-Model-Version": {"description": "The model version that answered"},
            "X-Cache": {"description": "precomputed, hit (the cache) or miss (scored now)"},
            "X-Experiment-Variant": {
                "description": "The reader's variant, while an experiment runs on personal lists"
            },
        }
    },
    422: {**PROBLEM, "description": "A parameter is out of range or unknown"},
    503: {**PROBLEM, "description": "No trained model is active yet"},
}
BACKEND: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No valid API key or bearer token"},
    403: {**PROBLEM, "description": "The key lacks the scope, or the account is not an admin"},
}
MAX_BATCH = 100
DatasetUserId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def list_response(answer: Answer) -> Response:
    """A finished list as JSON, with the model version that made it and where it came from."""
    headers = {"X-Model-Version": str(answer.model_version), "X-Cache": answer.source}
    if answer.assignment is not None:
        headers["X-Experiment-Variant"] = answer.assignment.variant
    return Response(content=answer.body, media_type="application/json", headers=headers)


@router.get(
    "/popular",
    summary="Most liked books of all time",
    response_model=RecommendationList,
    responses=LIST_RESPONSES,
    openapi_extra=LIST_QUERY.openapi_extra,
)
async def popular(
    recommendations: RecommendationsDep, query: Annotated[ListQuery, LIST_QUERY.depends]
) -> Response:
    return list_response(await recommendations.answer_async(query.request("popular")))


@router.get(
    "/trending",
    summary="Books liked most lately (time-decayed)",
    response_model=RecommendationList,
    responses=LIST_RESPONSES,
    openapi_extra=LIST_QUERY.openapi_extra,
)
async def trending(
    recommendations: RecommendationsDep, query: Annotated[ListQuery, LIST_QUERY.depends]
) -> Response:
    return list_response(await recommendations.answer_async(query.request("trending")))


@router.get(
    "/me",
    summary="Your personal recommendations, from everything you rated and shelved until now",
    response_model=RecommendationList,
    responses={**LIST_RESPONSES, **UNAUTHORIZED},
    openapi_extra=MY_LIST_QUERY.openapi_extra,
)
async def for_me(
    user: access.Reader,
    recommendations: RecommendationsDep,
    query: Annotated[MyListQuery, MY_LIST_QUERY.depends],
) -> Response:
    reader = ReaderRef(reader_id=user.reader_id)
    return list_response(await recommendations.answer_async(query.request(query.strategy), reader))


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
    recommendations: RecommendationsDep,
    user_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The data set's user id")],
    query: Annotated[PersonalQuery, PERSONAL_QUERY.depends],
) -> Response:
    reader = ReaderRef(external_id=user_id)
    return list_response(await recommendations.answer_async(query.request("personal"), reader))


class BatchRequest(BaseModel):
    user_ids: list[DatasetUserId] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"Data set user ids, at most {MAX_BATCH}"
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many books each, 1 to {MAX_K}")


class UserRecommendations(BaseModel):
    user_id: int
    items: list[RecommendedBook]
    model_version: int = Field(description="The model version that made this reader's list")
    experiment_id: int | None = Field(None, description="The running experiment, if any")
    variant: str | None = Field(None, description="The reader's variant of that experiment")


class BatchRecommendations(BaseModel):
    strategy: str
    model_version: int
    results: list[UserRecommendations]
    unknown_user_ids: list[int] = Field(description="Requested ids with no reader")


@router.post(
    "/batch",
    summary="Recommendations for up to 100 data set readers at once",
    responses={**BACKEND, 422: PROBLEM},
)
async def batch(
    principal: access.Backend,
    recommendations: RecommendationsDep,
    response: Response,
    body: BatchRequest,
) -> BatchRecommendations:
    version, answers, unknown = await to_thread.run_sync(
        recommendations.answer_many,
        ListRequest("personal", body.k),
        body.user_ids,
        limiter=recommendations.scoring_limiter(),
    )
    response.headers["X-Model-Version"] = str(version)
    return BatchRecommendations(
        strategy="personal",
        model_version=version,
        results=[
            UserRecommendations(
                user_id=user_id,
                items=answer.listing().items,
                model_version=answer.model_version,
                experiment_id=None
                if answer.assignment is None
                else answer.assignment.experiment_id,
                variant=None if answer.assignment is None else answer.assignment.variant,
            )
            for user_id, answer in answers.items()
        ],
        unknown_user_ids=unknown,
    )
