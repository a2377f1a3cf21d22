"""Put the web app into the FastAPI app: pages, static files, error pages, /docs."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from bookrec.web import assets
from bookrec.web.pages import admin, docs, reader
from bookrec.web.rendering import error_page, finish
from bookrec.web.session import CsrfRejected, LoginRequired, PageForbidden, login_url


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return finish(request, RedirectResponse(login_url(exc.next_path), status_code=303))


def _forbidden(request: Request, exc: Exception) -> Response:
    return error_page(
        request, 403, "Forbidden", "This page is for admins; your account cannot open it."
    )


def _csrf_rejected(request: Request, exc: Exception) -> Response:
    return error_page(
        request,
        403,
        "Form expired",
        "This form could not be accepted (it was older than your log-in, or came from another "
        "site). Go back, reload the page and send it again.",
    )


def install(app: FastAPI) -> None:
    """Add the pages and their assets to `app` (after the API's routes)."""
    app.mount(
        assets.SWAGGER_PREFIX,
        assets.VersionedStaticFiles(assets.swagger_ui_dir(), assets.SWAGGER_FILES),
        name="swagger-ui",
    )
    app.mount(assets.STATIC_PREFIX, assets.VersionedStaticFiles(assets.STATIC_DIR), name="static")
    app.include_router(docs.router)
    app.include_router(reader.router)
    app.include_router(admin.router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
