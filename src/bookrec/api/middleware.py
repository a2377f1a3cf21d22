"""Request ids, access logs, security headers, the body size cap and the refusal of NUL
characters, as pure ASGI middleware."""

from __future__ import annotations

import itertools
import re
import secrets
import time

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookrec.api.exception_handlers import problem
from bookrec.api.headers import HSTS_HEADER, NO_STORE_HEADER, SECURITY_HEADERS
from bookrec.errors import InvalidInput
from bookrec.observability.metrics import NO_VARIANT, RequestMetrics

log = structlog.get_logger("bookrec.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


_ID_PREFIX = secrets.token_hex(10)  # per process: ids from different workers never collide
_ID_COUNTER = itertools.count(1)
#: Methods counted under their own name; any other is counted as "other" (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Not logged (probes and scrapes would drown the lines that matter); still counted.
QUIET_PREFIXES = ("/health", "/metrics")


def new_request_id() -> str:
    """32 hex digits, unique per process and request (a uuid4 costs a system call each)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def route_of(scope: Scope, prefixes: tuple[str, ...] = ()) -> str:
    """The template of the route that answered (`/api/v1/books/{book_id}`), never the raw
    path: "unmatched" when none did.

    A route included under a prefix knows only its own template (`/books/{book_id}`), so the
    include prefix is put back from `prefixes` (fixed strings: the label set stays bounded).
    """
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str) or not template:
        return "unmatched"
    path: str = scope.get("path", "")
    for prefix in prefixes:
        if path.startswith(prefix) and not template.startswith(prefix):
            return prefix + template
    return template


class RequestContextMiddleware:
    """Give every request an id (or keep a sane incoming X-Request-ID), log it, time it,
    count it (`bookrec_http_requests_total`, latency by route template).

    Adds the security headers, HSTS over TLS, and `Cache-Control: no-store` on the paths
    under `no_store_prefixes` (tokens and personal data must not sit in caches).
    """

    def __init__(
        self,
        app: ASGIApp,
        no_store_prefixes: tuple[str, ...] = (),
        route_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.no_store_prefixes = no_store_prefixes
        self.route_prefixes = route_prefixes
        self.metrics = RequestMetrics()

    def _no_store(self, path: str) -> bool:
        return any(
            path == prefix or path.startswith(prefix.rstrip("/") + "/")
            for prefix in self.no_store_prefixes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        model_version: str | None = None
        variant: str | None = None
        over_tls = scope.get("scheme") in ("https", "wss")
        no_store = self._no_store(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            nonlocal status, model_version, variant
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name == b"x-model-version":
                        model_version = value.decode("latin-1")
                    elif name == b"x-experiment-variant":
                        variant = value.decode("latin-1")
                headers.append((b"x-request-id", request_id.encode()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if over_tls:
                    headers.append(HSTS_HEADER)
                if no_store:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append(NO_STORE_HEADER)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope, self.route_prefixes)
            method = scope.get("method", "")
            self.metrics.observe(route, method if method in METHODS else "other", status, elapsed)
            path = scope.get("path", "")
            if not path.startswith(QUIET_PREFIXES):
                client = scope.get("client")
                log.info(
                    "request",
                    client=client[0] if client else None,
                    method=method,
                    path=path,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    model_version=None if model_version is None else int(model_version),
                    variant=variant or (None if model_version is None else NO_VARIANT),
                )
            structlog.contextvars.unbind_contextvars("request_id")


class BodyTooLarge(HTTPException):
    """A request body over the cap; the problem+json handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413: by Content-Length before reading,
    and by counting the bytes of a streamed (chunked) body as the app reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # the server rejects a malformed Content-Length itself
            if too_large:
                await self._refuse(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # the app read the body outside the exception handlers; answer here if we still can
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = problem(
            request,
            413,
            "Payload too large",
            f"the request body is larger than {self.max_bytes} bytes",
            "http-413",
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


#: a JSON string's escaped NUL: "\u0000" not itself escaped (an even run of backslashes before)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_DETAIL = "text must not contain NUL characters (U+0000)"


class NulInBody(HTTPException):
    """A JSON or form body with a NUL; an HTTPException so that FastAPI's body parsing lets it
    through to the app's handler, which answers 422 as for any invalid input (problem+json, or
    the site's error page for a page's form)."""

    title = InvalidInput.title
    type_slug = InvalidInput.type_slug

    def __init__(self) -> None:
        super().__init__(422, NUL_DETAIL)


class NulRefusalMiddleware:
    """Refuse a NUL character in the path, the query, a JSON body or a form with 422.

    No text the service keeps or looks up may hold one (PostgreSQL cannot store it in text,
    and no title, tag, e-mail or name has one), so it is refused here, the same on every
    database, instead of failing deep inside a query. Other bodies (a CSV upload) are their
    parsers' to check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            response = problem(
                Request(scope, receive), 422, InvalidInput.title, NUL_DETAIL, InvalidInput.type_slug
            )
            await response(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if b"json" in content_type:
            holds_nul = _json_holds_nul
        elif content_type.startswith(b"application/x-www-form-urlencoded"):
            holds_nul = _form_holds_nul
        else:
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def checking_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False) and holds_nul(body):
                    raise NulInBody
            return message

        await self.app(scope, checking_receive, send)


def _json_holds_nul(body: bytearray) -> bool:
    return b"\x00" in body or _JSON_NUL.search(body) is not None


def _form_holds_nul(body: bytearray) -> bool:
    return b"\x00" in body or b"%00" in body
