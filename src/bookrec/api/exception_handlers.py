"""Every error leaves as RFC 9457 problem+json, with the request id to quote in a report."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bookrec.api.headers import HSTS_HEADER, NO_STORE_HEADER, SECURITY_HEADERS
from bookrec.db.engine import unavailable_reason
from bookrec.errors import BookrecError, DatabaseUnavailable, TooManyRequests, Unauthorized
from bookrec.web.rendering import error_page, is_page

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://bookrec.dev/problems/"
log = structlog.get_logger(__name__)


def problem(
    request: Request, status: int, title: str, detail: str, slug: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON)


async def _bookrec_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BookrecError)
    if is_page(request):  # a web page: the error in the site's layout
        headers = {}
        if isinstance(exc, (TooManyRequests, DatabaseUnavailable)):
            headers["Retry-After"] = str(exc.retry_after)
        return await run_in_threadpool(
            error_page, request, exc.status, exc.title, exc.detail, headers
        )
    response = problem(request, exc.status, exc.title, exc.detail, exc.type_slug, **exc.extra)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, (TooManyRequests, DatabaseUnavailable)):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, DatabaseUnavailable):
        cause = exc.__cause__
        log.warning(
            "database_unavailable",
            path=request.url.path,
            error=f"{type(cause).__name__}: {cause}" if cause else exc.detail,
        )
    return response


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database error met outside a unit of work: 503 when the database is away."""
    reason = unavailable_reason(exc)
    if reason is None:
        return await _unexpected_error(request, exc)
    unavailable = DatabaseUnavailable(reason)
    unavailable.__cause__ = exc
    return await _bookrec_error(request, unavailable)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_page(request):
        return await run_in_threadpool(
            error_page, request, 400, "Invalid request", "the address or form had a bad value"
        )
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "message": error["msg"],
            **({"input": error["input"]} if "input" in error and error["loc"][0] != "body" else {}),
        }
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"field": "?", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}"
    if _body_not_json(request, exc):
        sent = request.headers.get("content-type") or "no Content-Type"
        detail = (
            "the request body must be a JSON object sent with `Content-Type: application/json`"
            f" (this request sent {sent})"
        )
    return problem(request, 422, "Invalid request", detail, "invalid-request", errors=errors)


def _body_not_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON route got a body that is not a JSON object (a form, text, a JSON list...)."""
    return any(
        (
            tuple(error["loc"]) == ("body",)
            and error["type"] in ("model_attributes_type", "dict_type")
        )
        or error["type"] == "json_invalid"
        for error in exc.errors()
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
    if is_page(request):
        detail = (
            "There is no page at this address. Try the search, or go back to the home page."
            if exc.status_code == 404
            else str(exc.detail)
        )
        return await run_in_threadpool(
            error_page,
            request,
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            detail,
            exc.headers,
        )
    response = problem(
        request,
        exc.status_code,
        getattr(exc, "title", None) or titles.get(exc.status_code, "HTTP error"),
        str(exc.detail),
        getattr(exc, "type_slug", None) or f"http-{exc.status_code}",
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path)
    request_id = getattr(request.state, "request_id", None)
    response: Response | None = None
    if is_page(request):
        try:  # the site's error page; if rendering fails too, the problem document below
            response = await run_in_threadpool(
                error_page,
                request,
                500,
                "Something went wrong",
                "The server failed to handle this request. Please try again; if it keeps"
                f" happening, quote the request id {request_id} when reporting it.",
            )
        except Exception:
            log.exception("error_page_failed", path=request.url.path)
    if response is None:
        response = problem(
            request,
            500,
            "Internal error",
            "the server failed to handle this request; quote the request id when reporting it",
            "internal",
        )
    # sent by the outermost middleware, past the one that adds these to every other answer
    for name, value in (*SECURITY_HEADERS, NO_STORE_HEADER):  # a page keeps its own CSP
        response.headers.setdefault(name.decode(), value.decode())
    if request.url.scheme == "https":
        response.headers[HSTS_HEADER[0].decode()] = HSTS_HEADER[1].decode()
    if request_id:
        response.headers["x-request-id"] = request_id
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(BookrecError, _bookrec_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
