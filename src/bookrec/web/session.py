"""Browser sessions and CSRF protection.

Log-in sets `bookrec_session`, an HttpOnly, SameSite=Lax cookie (Secure over HTTPS, which
behind a proxy uvicorn learns from X-Forwarded-Proto) holding the login's access token: the
same token the API issues, renewed for the same login while it is live
(`accounts.service.browser_session`), so logging out or erasing the account ends it.

Every POST (forms, and `fetch` from static/app.js with an `X-CSRF-Token` header) must carry
a CSRF token: an HMAC, under the server's secret key, of a random `bookrec_csrf` cookie and
the login the session cookie names. A page from another site can neither read the token nor
set the cookie, and a token from before log-in or from another login does not pass.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from bookrec.accounts import service as accounts
from bookrec.accounts.audit import Origin
from bookrec.accounts.tokens import decode_access_token
from bookrec.db.session import unit_of_work
from bookrec.errors import BookrecError
from bookrec.web.state import state_of

SESSION_COOKIE = "bookrec_session"
CSRF_COOKIE = "bookrec_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: A session cookie longer than this is not a token: refused without decoding.
MAX_COOKIE_LENGTH = 2048


@dataclass(frozen=True)
class Viewer:
    """The signed-in account behind a page request."""

    user_id: int
    email: str
    role: str
    reader_id: int
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class LoginRequired(Exception):
    """A page that needs an account, asked for without one: sent to /login?next=..."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """A signed-in account opened a page its role does not allow (403 page)."""


class CsrfRejected(Exception):
    """A POST without a valid CSRF token (403 page)."""


def origin_of(request: Request) -> Origin:
    """Who did it, for the audit log: the same shape the API records."""
    return Origin(
        ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


def over_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_COOKIE_LENGTH:
        return None
    return token


def resolve_viewer(request: Request) -> Viewer | None:
    """The account the session cookie speaks for (None without a live login).

    A renewed access token, or the need to clear a dead cookie, is left on `request.state`
    for `rendering.finish` to write on the response.
    """
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    token = _session_token(request)
    if token is None:
        return None
    state = state_of(request)
    try:
        with unit_of_work(state.sessions) as session:
            authenticated, renewed = accounts.browser_session(session, state.auth, token)
            user = authenticated.user
            viewer = Viewer(
                user_id=user.user_id,
                email=user.email,
                role=user.role,
                reader_id=user.reader_id,
                session_id=authenticated.claims.session_id,
            )
    except BookrecError as exc:
        if exc.status != 401:
            raise
        request.state.session_cookie = ""  # cleared on the way out
        return None
    if renewed is not None:
        request.state.session_cookie = renewed
    request.state.viewer = viewer
    return viewer


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def get_optional_viewer(request: Request) -> Viewer | None:
    return resolve_viewer(request)


def get_reader_viewer(request: Request) -> Viewer:
    viewer = resolve_viewer(request)
    if viewer is None:
        raise LoginRequired(_here(request))
    return viewer


def get_admin_viewer(request: Request) -> Viewer:
    viewer = get_reader_viewer(request)
    if not viewer.is_admin:
        raise PageForbidden()
    return viewer


OptionalViewer = Annotated[Viewer | None, Depends(get_optional_viewer)]
ReaderViewer = Annotated[Viewer, Depends(get_reader_viewer)]
AdminViewer = Annotated[Viewer, Depends(get_admin_viewer)]


def login_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Where to go after log-in: a path on this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 32 for ch in value):
        return "/"
    return value


# -- CSRF -------------------------------------------------------------------------------------


def _session_binding(request: Request) -> str:
    """The login the session cookie names (its `sid`), or "" without one; no database."""
    token = _session_token(request)
    if token is None:
        return ""
    try:
        claims = decode_access_token(state_of(request).auth.tokens, token, allow_expired=True)
    except BookrecError:
        return ""
    return claims.session_id


def _csrf_secret(request: Request) -> bytes:
    return state_of(request).settings.secret_key.get_secret_value().encode("utf-8")


def csrf_cookie(request: Request) -> str:
    """The browser's CSRF cookie, or a new one (set on the response by `rendering.finish`)."""
    value: str | None = getattr(request.state, "csrf_cookie", None)
    if value is None:
        value = request.cookies.get(CSRF_COOKIE)
        if not value or len(value) > 64:
            value = secrets.token_urlsafe(24)
            request.state.new_csrf_cookie = True
        request.state.csrf_cookie = value
    return value


def csrf_token(request: Request, session_id: str | None = None) -> str:
    """The token forms on this page carry (bound to the cookie and the login)."""
    binding = _session_binding(request) if session_id is None else session_id
    message = f"csrf|{csrf_cookie(request)}|{binding}".encode()
    return hmac.new(_csrf_secret(request), message, hashlib.sha256).hexdigest()


async def require_csrf(request: Request) -> None:
    """Refuse a POST whose form field or `X-CSRF-Token` header is not this session's token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    cookie = request.cookies.get(CSRF_COOKIE)
    if not sent or not cookie or len(cookie) > 64:
        raise CsrfRejected()
    message = f"csrf|{cookie}|{_session_binding(request)}".encode()
    expected = hmac.new(_csrf_secret(request), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sent, expected):
        raise CsrfRejected()


CSRF = [Depends(require_csrf)]
