"""QueryModel reads a query like FastAPI's own query models: same values, errors and docs."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from bookrec.api.exception_handlers import install
from bookrec.api.query import QueryModel


class Listing(BaseModel):
    tag: list[str] | None = Field(None, max_length=3, description="Any of these tags")
    k: int = Field(10, ge=1, le=50, description="How many")
    explain: bool = False
    diversity: float = Field(0.0, ge=0.0, le=1.0)
    strategy: Literal["personal", "popular"] = "personal"
    language: str | None = Field(None, max_length=4)


LISTING = QueryModel(Listing)


def app() -> FastAPI:
    application = FastAPI()
    install(application)

    @application.get("/native")
    async def native(query: Annotated[Listing, Query()]) -> Listing:
        return query

    @application.get("/read", openapi_extra=LISTING.openapi_extra)
    async def read(query: Annotated[Listing, LISTING.depends]) -> Listing:
        return query

    return application


@pytest.mark.parametrize(
    "query",
    [
        "",
        "k=5&explain=true&diversity=0.25",
        "tag=a&tag=b&strategy=popular&language=eng",
        "k=3&k=7",  # a repeated single value: the last one
        "unknown=1&k=2",  # unknown names are ignored
        "k=0",
        "k=abc&diversity=2",
        "tag=a&tag=b&tag=c&tag=d",
        "strategy=nope",
        "explain=maybe",
        "language=toolong",
    ],
)
def test_values_and_errors_match_fastapis_own_query_models(query: str) -> None:
    client = TestClient(app())
    native = client.get(f"/native?{query}")
    read = client.get(f"/read?{query}")
    assert read.status_code == native.status_code
    if native.status_code == 200:
        assert read.json() == native.json()
    else:
        assert read.status_code == 422
        assert read.headers["content-type"] == "application/problem+json"
        assert read.json()["errors"] == native.json()["errors"]
        assert read.json()["detail"] == native.json()["detail"]


def test_openapi_parameters_match_fastapis_own() -> None:
    paths = app().openapi()["paths"]
    assert paths["/read"]["get"]["parameters"] == paths["/native"]["get"]["parameters"]


def test_nested_models_are_refused() -> None:
    class Inner(BaseModel):
        x: int

    class Nested(BaseModel):
        inner: Inner

    with pytest.raises(TypeError, match="flat"):
        QueryModel(Nested)
