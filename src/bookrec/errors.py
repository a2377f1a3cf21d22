"""The error family every layer raises; the API maps it to RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any


class BookrecError(Exception):
    """Base of every error bookrec means to show to a user."""

    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str, *, keep_changes: bool = False, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        #: Commit the unit of work before reporting the error: the refusal itself wrote what
        #: must last (an audit event, a revoked token family). Off by default: errors roll back.
        self.keep_changes = keep_changes


class NotFound(BookrecError):
    status = 404
    title = "Not found"
    type_slug = "not-found"

    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(f"{what} {identifier} does not exist", resource=what, id=identifier)


class Conflict(BookrecError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Unauthorized(BookrecError):
    """No valid credentials: the API answers 401 with `WWW-Authenticate: Bearer`."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(
        self, detail: str, *, challenge: str = "Bearer", keep_changes: bool = False, **extra: Any
    ) -> None:
        super().__init__(detail, keep_changes=keep_changes, **extra)
        #: The `WWW-Authenticate` value the API sends with this 401 (RFC 6750).
        self.challenge = challenge


class Forbidden(BookrecError):
    """Valid credentials that do not allow this operation."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class InvalidInput(BookrecError):
    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"


class TooLarge(BookrecError):
    status = 413
    title = "Content too large"
    type_slug = "too-large"


#: a bad value longer than this is shown by its start and length (a field can be megabytes)
SHOWN_VALUE_CHARS = 80


def _shown(value: object) -> str:
    if isinstance(value, str | bytes) and len(value) > SHOWN_VALUE_CHARS:
        return f"{value[:SHOWN_VALUE_CHARS]!r}… ({len(value):,} characters)"
    return repr(value)


class ImportFailed(InvalidInput):
    """A data file has a bad value; names the file, the line (header = 1), the column and value."""

    title = "Import failed"
    type_slug = "import-failed"

    def __init__(
        self, file: str, line: int | None, column: str | None, value: object, reason: str
    ) -> None:
        where = file if line is None else f"{file}, line {line}"
        if column is not None:
            where += f", column {column!r}"
        shown = "" if value is None else f": {_shown(value)}"
        if isinstance(value, str | bytes) and len(value) > SHOWN_VALUE_CHARS:
            value = value[:SHOWN_VALUE_CHARS]
        super().__init__(
            f"{where}{shown}: {reason}", file=file, line=line, column=column, value=value
        )
        self.file = file
        self.line = line
        self.column = column
        self.value = value
        self.reason = reason


class ModelUnavailable(BookrecError):
    status = 503
    title = "No model available"
    type_slug = "model-unavailable"


class ServiceUnavailable(BookrecError):
    """A service bookrec depends on (the job queue's broker) cannot be reached right now."""

    status = 503
    title = "Service unavailable"
    type_slug = "service-unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached, is restarting or has no connection free right now.

    The API answers 503 with `Retry-After`. A write that met this was not acknowledged
    (it rolled back, or in the rare loss of the connection during COMMIT, may have landed):
    the client sends it again.
    """

    title = "Database unavailable"
    type_slug = "database-unavailable"
    #: Seconds a client should wait before trying again (a restart takes a few).
    retry_after = 5

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the database is not available right now ({reason}); try again in {self.retry_after} s"
        )


class TooManyRequests(BookrecError):
    """Over a rate limit: the API answers 429 with `Retry-After` in seconds."""

    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after
