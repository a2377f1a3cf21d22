"""Books and tags: browse, search, look up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from bookrec.api.deps import PageDep, RecommendationsDep, SessionDep
from bookrec.api.routers.recommendations import (
    LIST_RESPONSES,
    SIMILAR_QUERY,
    SimilarQuery,
    list_response,
)
from bookrec.api.schemas import PROBLEM, Page
from bookrec.catalog import service
from bookrec.catalog.schemas import BookDetail, BookSuggestion, BookSummary, TagOut
from bookrec.serving.schemas import RecommendationList

router = APIRouter(tags=["books"])

BookId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The data set's book id")]


@router.get("/books", summary="Browse and search books")
def list_books(
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Words of the title, original title, authors, series or tags; best "
            "matches first, misspellings tolerated",
        ),
    ] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Exact tag name")] = None,
    language: Annotated[
        str | None, Query(max_length=16, description="Language code, e.g. eng or en-US")
    ] = None,
    year_min: Annotated[int | None, Query(ge=-5000, le=2100)] = None,
    year_max: Annotated[int | None, Query(ge=-5000, le=2100)] = None,
) -> Page[BookSummary]:
    books, total = service.search_books(
        session,
        service.BookQuery(q=q, tag=tag, language=language, year_min=year_min, year_max=year_max),
        page.offset,
        page.size,
    )
    return page.of([BookSummary.model_validate(b) for b in books], total)


@router.get("/books/suggest", summary="Type-ahead: up to 10 books matching what is typed")
def suggest_books(
    session: SessionDep,
    q: Annotated[
        str, Query(min_length=1, max_length=200, description="What the reader has typed so far")
    ],
    size: Annotated[int, Query(ge=1, le=10, description="How many suggestions")] = 10,
) -> list[BookSuggestion]:
    books = service.suggest_books(session, q, size)
    return [BookSuggestion.model_validate(book) for book in books]


@router.get("/books/{book_id}", summary="One book, with its authors and tags")
def get_book(session: SessionDep, book_id: BookId) -> BookDetail:
    book, tags = service.get_book(session, book_id)
    return BookDetail.of(book, tags)


@router.get(
    "/books/{book_id}/similar",
    summary="Books like this one, by the active model",
    response_model=RecommendationList,
    responses={**LIST_RESPONSES, 404: {**PROBLEM, "description": "No book with this id"}},
    openapi_extra=SIMILAR_QUERY.openapi_extra,
)
async def similar_books(
    recommendations: RecommendationsDep,
    book_id: BookId,
    query: Annotated[SimilarQuery, SIMILAR_QUERY.depends],
) -> Response:
    answer = await run_in_threadpool(recommendations.similar, book_id, query.k, query.filters())
    return list_response(answer)


@router.get("/tags", summary="Tags, most used first")
def list_tags(
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of a tag name")
    ] = None,
) -> Page[TagOut]:
    rows, total = service.list_tags(session, q, page.offset, page.size)
    return page.of([TagOut(tag_id=t, name=n, book_count=c) for t, n, c in rows], total)
