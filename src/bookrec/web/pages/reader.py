"""Reader pages: home, register, log in and out, search, book, for you, shelf, account."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from bookrec.accounts import privacy
from bookrec.accounts import service as accounts
from bookrec.accounts.models import User
from bookrec.accounts.tokens import DEVICE_TTL, device_knows, issue_device_token
from bookrec.catalog import service as catalog
from bookrec.catalog.schemas import BookDetail, BookSummary
from bookrec.db.base import utcnow
from bookrec.db.session import unit_of_work
from bookrec.errors import BookrecError, InvalidInput, TooManyRequests, Unauthorized
from bookrec.experiments import service as experiments
from bookrec.importing import goodreads
from bookrec.readers import service as readers
from bookrec.serving.erasure import forget_reader
from bookrec.serving.service import FilterRequest, ListRequest, ReaderRef
from bookrec.web.pages.common import NOTICES, FormErrors, Paging, query_without, recommended
from bookrec.web.rendering import error_page, finish, redirect, render
from bookrec.web.session import (
    CSRF,
    OptionalViewer,
    ReaderViewer,
    origin_of,
    safe_next,
)
from bookrec.web.state import state_of

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
#: The note a successful log-in leaves on the browser (`accounts.tokens.issue_device_token`).
DEVICE_COOKIE = "bookrec_device"
FOR_YOU_SIZE = 12
SIMILAR_SIZE = 6
#: The diversity control on /for-you: its choices, as the reader reads them.
DIVERSITY_CHOICES = [
    (0.0, "Closest matches"),
    (0.3, "A little variety"),
    (0.6, "More variety"),
    (0.9, "Most variety"),
]
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]
Next = Annotated[str | None, Form(alias="next", max_length=2000)]
Notice = Annotated[str | None, Query(max_length=40)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _notice(code: str | None) -> str | None:
    return NOTICES.get(code or "")


# -- home ------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, viewer: OptionalViewer, notice: Notice = None) -> Response:
    popular = recommended(request, ListRequest("popular", 8))
    trending = recommended(request, ListRequest("trending", 8))
    for_you = None
    if viewer is not None:
        for_you = recommended(
            request,
            ListRequest("personal", 8, explain=True),
            ReaderRef(reader_id=viewer.reader_id),
        )
    return render(
        request,
        "home.html",
        {
            "popular": popular,
            "trending": trending,
            "for_you": for_you,
            "notice": _notice(notice),
        },
    )


# -- accounts --------------------------------------------------------------------------------


@router.get("/register")
def register_page(request: Request) -> Response:
    return render(request, "register.html", {"errors": FormErrors(), "email": ""})


@router.post("/register", dependencies=CSRF)
def register(request: Request, email: Email, password: Password) -> Response:
    state = state_of(request)
    origin = origin_of(request)
    try:
        limiter = state.rate_limiter
        limiter.hit(limiter.limits.register_ip, "register-ip", _client_ip(request))
        with unit_of_work(state.sessions) as session:
            accounts.register(session, state.auth, email, password, origin=origin)
        with unit_of_work(state.sessions) as session:
            issued = accounts.login(session, state.auth, email, password, origin)
    except TooManyRequests as exc:
        return _form_error(request, "register.html", exc, email, status_code=429)
    except BookrecError as exc:
        return _form_error(request, "register.html", exc, email, status_code=exc.status)
    request.state.session_cookie = issued.access_token
    return redirect(request, "/for-you", notice="registered")


def _form_error(
    request: Request,
    template: str,
    exc: BookrecError,
    email: str,
    *,
    status_code: int,
    **context: object,
) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    errors = FormErrors.of(exc)
    if errors.fields and set(errors.fields) - {"email", "password"}:
        errors = FormErrors(form=exc.detail)
    return render(
        request,
        template,
        {"errors": errors, "email": email, **context},
        status_code=400 if status_code == 422 else status_code,
        headers=headers,
    )


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return render(
        request, "login.html", {"errors": FormErrors(), "email": "", "next": safe_next(next_path)}
    )


@router.post("/login", dependencies=CSRF)
def login(request: Request, email: Email, password: Password, next_path: Next = None) -> Response:
    """The API's log-in with its limits: per address, per account and address, and per
    account from devices it never logged in on (the API's device cookie counts here too)."""
    state = state_of(request)
    limiter = state.rate_limiter
    target = safe_next(next_path)
    ip = _client_ip(request)
    try:
        limiter.hit(limiter.limits.login_ip, "login-ip", ip)
        account = accounts.email_key(email)
        limiter.hit(limiter.limits.login_email, "login-email", f"{account}:{ip}")
        known_device = device_knows(state.auth.tokens, request.cookies.get(DEVICE_COOKIE), account)
        if not known_device:
            limiter.check(limiter.limits.login_account, "login-account", account)
        try:
            with unit_of_work(state.sessions) as session:
                issued = accounts.login(session, state.auth, email, password, origin_of(request))
        except Unauthorized:
            if not known_device:
                with contextlib.suppress(TooManyRequests):
                    limiter.hit(limiter.limits.login_account, "login-account", account)
            raise
    except BookrecError as exc:
        status_code = 429 if isinstance(exc, TooManyRequests) else 401
        if isinstance(exc, Unauthorized):
            exc = Unauthorized(accounts.LOGIN_FAILED)
        return _form_error(request, "login.html", exc, email, status_code=status_code, next=target)
    request.state.session_cookie = issued.access_token
    response = redirect(request, target, notice=None if target != "/" else "logged-in")
    # this browser logged in to the account: its next log-ins pass the per-account limit on
    # failures from unknown devices (as the API's device cookie does for /api/v1/auth)
    response.set_cookie(
        DEVICE_COOKIE,
        issue_device_token(state.auth.tokens, account, utcnow()),
        max_age=int(DEVICE_TTL.total_seconds()),
        path="/login",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout", dependencies=CSRF)
def logout(request: Request, viewer: OptionalViewer) -> Response:
    state = state_of(request)
    if viewer is not None:
        with unit_of_work(state.sessions) as session:
            authenticated = accounts.browser_session(
                session, state.auth, request.cookies.get("bookrec_session", "")
            )[0]
            accounts.logout(session, authenticated, origin_of(request))
    request.state.session_cookie = ""
    return redirect(request, "/", notice="logged-out")


# -- search and books ------------------------------------------------------------------------


@router.get("/search")
def search(
    request: Request,
    q: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=16)] = None,
    year_min: Annotated[str | None, Query(max_length=6)] = None,
    year_max: Annotated[str | None, Query(max_length=6)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    state = state_of(request)
    errors = FormErrors()
    years = {name: _year(raw) for name, raw in (("year_min", year_min), ("year_max", year_max))}
    for name, raw in (("year_min", year_min), ("year_max", year_max)):
        if raw and years[name] is None:
            errors.fields[name] = "a year, e.g. 1990"
    query = catalog.BookQuery(
        q=(q or "").strip() or None,
        tag=tag or None,
        language=language or None,
        year_min=years["year_min"],
        year_max=years["year_max"],
    )
    with unit_of_work(state.sessions) as session:
        tags = [name for _, name, _ in catalog.list_tags(session, None, 0, 100)[0]]
        books, total = catalog.search_books(session, query, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        results = [BookSummary.model_validate(book) for book in books]
        # the title a book is best known by, when the edition's title differs
        known_as = {
            book.book_id: book.original_title
            for book in books
            if book.original_title and book.original_title.casefold() != book.title.casefold()
        }
    params = {"q": q, "tag": tag, "language": language, "year_min": year_min, "year_max": year_max}
    return render(
        request,
        "search.html",
        {
            "q": q or "",
            "params": params,
            "tags": tags,
            "results": results,
            "known_as": known_as,
            "paging": Paging(page, PAGE_SIZE, total),
            "errors": errors,
            "link": lambda **changes: "/search?" + query_without(params, **changes),
        },
    )


def _year(text: str | None) -> int | None:
    """A year typed in a filter, or None when it is empty or not a year."""
    try:
        year = int((text or "").strip())
    except ValueError:
        return None
    return year if -5000 <= year <= 2100 else None


@router.get("/books/{book_id}")
def book_page(
    request: Request, book_id: int, viewer: OptionalViewer, notice: Notice = None
) -> Response:
    state = state_of(request)
    if not 1 <= book_id <= 2**31 - 1:
        return error_page(request, 404, "Not found", f"book {book_id} does not exist")
    with unit_of_work(state.sessions) as session:
        book, tags = catalog.get_book(session, book_id)
        detail = BookDetail.of(book, tags)
        activity = (
            readers.book_activity(session, viewer.reader_id, book_id)
            if viewer is not None
            else None
        )
    similar = None
    try:
        answer = state.serving.recommendations.similar(
            book_id, SIMILAR_SIZE, FilterRequest(), explain=True
        )
        similar = answer.listing().items
    except BookrecError:
        similar = None
    return render(
        request,
        "book.html",
        {"book": detail, "activity": activity, "similar": similar, "notice": _notice(notice)},
    )


Stars = Annotated[int, Form(ge=1, le=5)]


@router.post("/books/{book_id}/rating", dependencies=CSRF)
def rate(request: Request, book_id: int, viewer: ReaderViewer, rating: Stars) -> Response:
    with unit_of_work(state_of(request).sessions) as session:
        readers.rate_book(session, viewer.reader_id, book_id, rating)
    return redirect(request, f"/books/{book_id}", notice="rated")


@router.post("/books/{book_id}/rating/delete", dependencies=CSRF)
def unrate(request: Request, book_id: int, viewer: ReaderViewer) -> Response:
    with unit_of_work(state_of(request).sessions) as session:
        readers.unrate_book(session, viewer.reader_id, book_id)
    return redirect(request, f"/books/{book_id}", notice="unrated")


@router.post("/books/{book_id}/shelf", dependencies=CSRF)
def shelve(request: Request, book_id: int, viewer: ReaderViewer) -> Response:
    with unit_of_work(state_of(request).sessions) as session:
        readers.shelve_book(session, viewer.reader_id, book_id)
    return redirect(request, f"/books/{book_id}", notice="shelved")


@router.post("/books/{book_id}/shelf/delete", dependencies=CSRF)
def unshelve(
    request: Request,
    book_id: int,
    viewer: ReaderViewer,
    back: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    with unit_of_work(state_of(request).sessions) as session:
        readers.unshelve_book(session, viewer.reader_id, book_id)
    return redirect(request, safe_next(back or f"/books/{book_id}"), notice="unshelved")


# -- for you, shelf --------------------------------------------------------------------------


@router.get("/for-you")
def for_you(
    request: Request,
    viewer: ReaderViewer,
    diversity: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    notice: Notice = None,
) -> Response:
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        rated = readers.list_ratings(session, viewer.reader_id, 0, 1)[1]
        shelved = readers.list_shelf(session, viewer.reader_id, 0, 1)[1]
    listing = recommended(
        request,
        ListRequest("personal", FOR_YOU_SIZE, explain=True, diversity=diversity),
        ReaderRef(reader_id=viewer.reader_id),
    )
    return render(
        request,
        "for_you.html",
        {
            "listing": listing,
            "history": rated + shelved,
            "diversity": diversity,
            "choices": DIVERSITY_CHOICES,
            "notice": _notice(notice),
        },
    )


@router.get("/shelf")
def shelf(
    request: Request,
    viewer: ReaderViewer,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    notice: Notice = None,
) -> Response:
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        shelved, shelved_total = readers.list_shelf(
            session, viewer.reader_id, (page - 1) * PAGE_SIZE, PAGE_SIZE
        )
        ratings, ratings_total = readers.list_ratings(
            session, viewer.reader_id, (page - 1) * PAGE_SIZE, PAGE_SIZE
        )
    return render(
        request,
        "shelf.html",
        {
            "shelved": shelved,
            "ratings": ratings,
            "paging": Paging(page, PAGE_SIZE, max(shelved_total, ratings_total)),
            "shelved_total": shelved_total,
            "ratings_total": ratings_total,
            "notice": _notice(notice),
        },
    )


# -- account ---------------------------------------------------------------------------------


@router.get("/account")
def account(request: Request, viewer: ReaderViewer, notice: Notice = None) -> Response:
    return render(
        request,
        "account.html",
        {"errors": FormErrors(), "report": None, "notice": _notice(notice)},
    )


@router.get("/account/export")
def export(request: Request, viewer: ReaderViewer) -> Response:
    """All my data as JSON: the API's export, streamed as a download."""
    state = state_of(request)

    def document() -> Iterator[bytes]:
        with unit_of_work(state.sessions) as session:
            user = session.get(User, viewer.user_id)
            if user is not None:
                more = [experiments.export_section(user.reader_id)]
                yield from privacy.export(session, user, more)

    response = StreamingResponse(
        document(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="bookrec-export-{viewer.user_id}.json"'
        },
    )
    return finish(request, response)


@router.post("/account/delete", dependencies=CSRF)
def delete_account(
    request: Request,
    viewer: ReaderViewer,
    password: Password,
    confirm: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Erase the account (the API's GDPR erase): asks for the password and a tick."""
    state = state_of(request)
    limiter = state.rate_limiter
    try:
        if confirm != "yes":
            raise InvalidInput(
                "tick the box to confirm you want your account erased", field="confirm"
            )
        limiter.hit(
            limiter.limits.login_email,
            "login-email",
            f"{accounts.email_key(viewer.email)}:{_client_ip(request)}",
        )
        with unit_of_work(state.sessions) as session:
            user = session.get(User, viewer.user_id)
            if user is None:
                raise Unauthorized("this account no longer exists")
            accounts.confirm_password(session, state.auth, user, password, origin_of(request))
            privacy.erase(session, user)
            forget_reader(session, state.serving, viewer.reader_id)
    except BookrecError as exc:
        return render(
            request,
            "account.html",
            {"errors": FormErrors.of(exc), "report": None, "notice": None},
            status_code=400 if exc.status in (403, 422) else exc.status,
        )
    request.state.session_cookie = ""
    return render(request, "erased.html", {"viewer": None})


@router.post("/account/import", dependencies=CSRF)
async def import_goodreads(
    request: Request, viewer: ReaderViewer, file: Annotated[UploadFile, File()]
) -> Response:
    """A Goodreads library export into my ratings and shelf (the API's import)."""
    state = state_of(request)
    content = await file.read(goodreads.MAX_BYTES + 1)

    def run() -> goodreads.GoodreadsReport:
        if len(content) > goodreads.MAX_BYTES:
            raise InvalidInput(
                f"the file is over {goodreads.MAX_BYTES // (1024 * 1024)} MB; a Goodreads "
                "export of 10,000 books is about 3 MB",
                field="file",
            )
        with unit_of_work(state.sessions) as session:
            return goodreads.import_library(session, viewer.reader_id, content)

    try:
        report = await run_in_threadpool(run)
    except BookrecError as exc:
        errors = FormErrors(fields={"file": exc.detail})
        return await run_in_threadpool(
            render,
            request,
            "account.html",
            {"errors": errors, "report": None, "notice": None},
            status_code=400,
        )
    return await run_in_threadpool(
        render, request, "account.html", {"errors": FormErrors(), "report": report, "notice": None}
    )
