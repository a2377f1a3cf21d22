"""Books and tags: browse, search, look up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from bookrec.accounts import audit
from bookrec.accounts.models import User
from bookrec.api import access
from bookrec.api.deps import (
    CatalogueWriteDep,
    OriginDep,
    PageDep,
    RecommendationsDep,
    SessionDep,
)
from bookrec.api.routers.recommendations import (
    LIST_RESPONSES,
    SIMILAR_QUERY,
    SimilarQuery,
    list_response,
)
from bookrec.api.schemas import PROBLEM, Page
from bookrec.catalog import editing, service
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
    answer = await run_in_threadpool(
        recommendations.similar, book_id, query.k, query.filters(), query.explain
    )
    return list_response(answer)


# -- admin: the catalogue's books -----------------------------------------------------------

ADMIN_WRITE = {**access.ADMIN_RESPONSES, 404: {**PROBLEM, "description": "No book with this id"}}


def _audit(
    session: SessionDep, action: str, admin: User, origin: OriginDep, book_id: int, **details: Any
) -> None:
    audit.record(
        session,
        action,
        origin=origin,
        actor_user_id=admin.user_id,
        target=f"book:{book_id}",
        details=details,
    )


@router.post(
    "/books",
    status_code=201,
    summary="Add a book (admin); similar books answer for it at once, before any training",
    responses={
        **access.ADMIN_RESPONSES,
        409: {**PROBLEM, "description": "Another book has this ISBN"},
    },
)
def create_book(
    _written: CatalogueWriteDep,
    session: SessionDep,
    admin: access.Admin,
    origin: OriginDep,
    body: editing.BookFields,
) -> BookDetail:
    book = editing.create_book(session, body)
    _audit(session, "book.create", admin, origin, book.book_id, title=book.title)
    created, tags = service.get_book(session, book.book_id)
    return BookDetail.of(created, tags)


@router.patch(
    "/books/{book_id}",
    summary="Change a book's fields (admin): only the fields sent change",
    responses={**ADMIN_WRITE, 409: {**PROBLEM, "description": "Another book has this ISBN"}},
)
def update_book(
    _written: CatalogueWriteDep,
    session: SessionDep,
    admin: access.Admin,
    origin: OriginDep,
    book_id: BookId,
    body: editing.BookPatch,
) -> BookDetail:
    _, changed = editing.update_book(session, book_id, body)
    _audit(session, "book.update", admin, origin, book_id, fields=changed)
    session.expire_all()
    book, tags = service.get_book(session, book_id)
    return BookDetail.of(book, tags)


@router.delete(
    "/books/{book_id}",
    status_code=204,
    summary="Delete a book (admin): gone from lists, search and similar books; ratings kept",
    responses=ADMIN_WRITE,
)
def delete_book(
    _written: CatalogueWriteDep,
    session: SessionDep,
    admin: access.Admin,
    origin: OriginDep,
    book_id: BookId,
) -> Response:
    book = editing.delete_book(session, book_id)
    _audit(session, "book.delete", admin, origin, book_id, title=book.title)
    return Response(status_code=204)


@router.get("/tags", summary="Tags that at least one book carries, most used first")
def list_tags(
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of a tag name")
    ] = None,
) -> Page[TagOut]:
    rows, total = service.list_tags(session, q, page.offset, page.size)
    return page.of([TagOut(tag_id=t, name=n, book_count=c) for t, n, c in rows], total)
