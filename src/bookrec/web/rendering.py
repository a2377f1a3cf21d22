"""Pages out: templates, the headers every page carries, cookies the request left to set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bookrec import __version__
from bookrec.web import assets
from bookrec.web.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_cookie,
    csrf_token,
    over_https,
    resolve_viewer,
)
from bookrec.web.state import state_of

#: Pages: scripts and styles from this server only, no inline script or style, no framing.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)
#: /docs: Swagger UI sets styles inline (its own scripts still come from this server only).
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)

templates = Jinja2Templates(directory=assets.TEMPLATES_DIR)
templates.env.globals.update(
    static_url=assets.static_url, swagger_url=assets.swagger_url, version=__version__
)


def finish(request: Request, response: Response, *, csp: str = PAGE_CSP) -> Response:
    """Headers and cookies every page answer carries: CSP, no-store, the session and CSRF
    cookies this request renewed, set or cleared."""
    response.headers["content-security-policy"] = csp
    response.headers["cache-control"] = "no-store"
    secure = over_https(request)
    session_cookie: str | None = getattr(request.state, "session_cookie", None)
    if session_cookie == "":
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True)
    elif session_cookie is not None:
        ttl = state_of(request).auth.tokens.refresh_ttl
        response.set_cookie(
            SESSION_COOKIE,
            session_cookie,
            max_age=int(ttl.total_seconds()),
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
    if getattr(request.state, "new_csrf_cookie", False):
        response.set_cookie(
            CSRF_COOKIE,
            csrf_cookie(request),
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page: the template with the viewer, a CSRF token and the current path."""
    viewer = getattr(request.state, "viewer", None) or (
        resolve_viewer(request) if getattr(request.state, "session_cookie", None) is None else None
    )
    # without a live login the forms are bound to no session: a dead session cookie is
    # cleared by this very answer, so the next POST comes without it
    session_id = viewer.session_id if viewer is not None else ""
    full = {
        "viewer": viewer,
        "csrf_token": csrf_token(request, session_id),
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, template, full, status_code=status_code, headers=dict(headers or {})
    )
    return finish(request, response)


def redirect(request: Request, url: str, *, notice: str | None = None) -> Response:
    """303 See Other after a form (post/redirect/get); `notice` is shown on the next page."""
    if notice:
        separator = "&" if "?" in url else "?"
        url = f"{url}{separator}notice={notice}"
    return finish(request, RedirectResponse(url, status_code=303))


def error_page(
    request: Request,
    status_code: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error as a page (404, 403, 429, 503...), in the site's layout."""
    return render(
        request,
        "error.html",
        {"status": status_code, "title": title, "detail": detail},
        status_code=status_code,
        headers=headers,
    )


def is_page(request: Request) -> bool:
    """Whether an error at this path is answered as a page (not problem+json): anything
    outside the API, probes, metrics and the OpenAPI document, asked for by a browser."""
    path = request.url.path
    if path.startswith(("/api/", "/health", "/metrics", "/openapi.json")) or path == "/api":
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or request.method == "POST"
