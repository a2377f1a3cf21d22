"""A reader's own activity: ratings, the to-read shelf, and view/click/impression events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bookrec.api import access
from bookrec.api.deps import PageDep, SessionDep, StateDep
from bookrec.api.routers.auth import UNAUTHORIZED
from bookrec.api.routers.books import BookId
from bookrec.api.schemas import PROBLEM, Page
from bookrec.errors import TooLarge
from bookrec.experiments import service as experiments
from bookrec.importing import goodreads
from bookrec.readers import service
from bookrec.readers.schemas import (
    EventBatch,
    EventsAccepted,
    RatingIn,
    RatingOut,
    ShelfItemOut,
)

router = APIRouter(tags=["me"])

INVALID: dict[int | str, dict[str, Any]] = {
    422: {**PROBLEM, "description": "A parameter or the body breaks a rule; `field` names it"}
}
UNKNOWN_BOOK: dict[int | str, dict[str, Any]] = {
    404: {**PROBLEM, "description": "No book has this id"}
}


@router.put(
    "/me/ratings/{book_id}",
    summary="Rate a book 1 to 5 stars, or change your rating",
    response_description="Your rating, changed",
    responses={
        201: {"model": RatingOut, "description": "Your rating, new"},
        **UNAUTHORIZED,
        **UNKNOWN_BOOK,
        **INVALID,
    },
)
def rate_book(
    session: SessionDep, reader: access.Reader, book_id: BookId, body: RatingIn, response: Response
) -> RatingOut:
    rating, created = service.rate_book(session, reader.reader_id, book_id, body.rating)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return rating


@router.delete(
    "/me/ratings/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove your rating of a book (done also when there was none)",
    response_description="No rating of this book is left",
    responses={**UNAUTHORIZED, **INVALID},
)
def unrate_book(session: SessionDep, reader: access.Reader, book_id: BookId) -> Response:
    service.unrate_book(session, reader.reader_id, book_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me/ratings",
    summary="Your ratings, newest first",
    response_description="A page of your ratings, with each book's title and authors",
    responses={**UNAUTHORIZED, **INVALID},
)
def list_ratings(session: SessionDep, reader: access.Reader, page: PageDep) -> Page[RatingOut]:
    items, total = service.list_ratings(session, reader.reader_id, page.offset, page.size)
    return page.of(items, total)


@router.put(
    "/me/shelf/{book_id}",
    summary="Put a book on your to-read shelf",
    response_description="The book was on your shelf already",
    responses={
        201: {"model": ShelfItemOut, "description": "The book is now on your shelf"},
        **UNAUTHORIZED,
        **UNKNOWN_BOOK,
        **INVALID,
    },
)
def shelve_book(
    session: SessionDep, reader: access.Reader, book_id: BookId, response: Response
) -> ShelfItemOut:
    item, created = service.shelve_book(session, reader.reader_id, book_id)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return item


@router.delete(
    "/me/shelf/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Take a book off your to-read shelf (done also when it was not there)",
    response_description="The book is not on your shelf",
    responses={**UNAUTHORIZED, **INVALID},
)
def unshelve_book(session: SessionDep, reader: access.Reader, book_id: BookId) -> Response:
    service.unshelve_book(session, reader.reader_id, book_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me/shelf",
    summary="Your to-read shelf, newest first",
    response_description="A page of your shelf, with each book's title and authors",
    responses={**UNAUTHORIZED, **INVALID},
)
def list_shelf(session: SessionDep, reader: access.Reader, page: PageDep) -> Page[ShelfItemOut]:
    items, total = service.list_shelf(session, reader.reader_id, page.offset, page.size)
    return page.of(items, total)


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Log views, clicks and impressions of books, 1 to 100 per batch",
    description=(
        "With a bearer token the events are your own. An app's backend reports its readers' "
        "events with an API key (scope `events:write`), each event naming the data set "
        "`user_id`. Events from an experiment's list name its `experiment_id` (and `variant`): "
        "impressions and clicks then count for the reader's variant; a click naming no "
        "experiment counts for the running one when its list showed that book to the reader."
    ),
    response_description="Every event of the batch was recorded",
    responses={**UNAUTHORIZED, **INVALID, 403: PROBLEM, 429: PROBLEM},
)
def record_events(
    session: SessionDep, state: StateDep, sender: access.Events, body: EventBatch
) -> EventsAccepted:
    limits = service.EventLimits.of(state.settings)
    reader_ids = service.event_readers(session, body.events, sender.reader_id)
    times = service.record_events(session, reader_ids, body.events, limits)
    experiments.record_feedback(session, reader_ids, body.events, times)
    return EventsAccepted(accepted=len(times))


class GoodreadsImported(BaseModel):
    rows: int = Field(description="Books in the file")
    matched: int = Field(description="Rows matched to a catalogue book and rated or shelved")
    ratings: int = Field(description="Ratings 1-5 written (a rating there already is replaced)")
    shelved: int = Field(description="Unrated to-read books put on your shelf")
    skipped: int = Field(description="Unrated rows not on the to-read shelf (0 is no rating)")
    unmatched: int = Field(description="Rated or to-read rows no catalogue book matches")
    unmatched_titles: list[str] = Field(description="The first few unmatched titles")


@router.post(
    "/me/import/goodreads",
    summary="Import your Goodreads library export: ratings and to-read shelf",
    responses={
        **UNAUTHORIZED,
        **INVALID,
        413: {**PROBLEM, "description": f"The file is over {goodreads.MAX_BYTES} bytes"},
    },
)
async def import_goodreads(
    session: SessionDep,
    reader: access.Reader,
    file: Annotated[
        UploadFile, File(description="goodreads_library_export.csv as Goodreads exports it")
    ],
) -> GoodreadsImported:
    content = await file.read(goodreads.MAX_BYTES + 1)
    if len(content) > goodreads.MAX_BYTES:
        raise TooLarge(
            f"file: over {goodreads.MAX_BYTES // (1024 * 1024)} MB; a Goodreads export of "
            "10,000 books is about 3 MB",
            field="file",
        )
    report = await run_in_threadpool(goodreads.import_library, session, reader.reader_id, content)
    return GoodreadsImported.model_validate(report, from_attributes=True)
