"""What the API takes and says about a reader's ratings, to-read shelf and events."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

MAX_EVENTS_PER_BATCH = 100
MAX_CONTEXT_KEYS = 16
MAX_CONTEXT_BYTES = 1024

BookIdField = Annotated[
    int, Field(ge=1, le=2**31 - 1, description="The data set's book id (books.csv `book_id`)")
]
Scalar = str | int | float | bool | None
_datetime = TypeAdapter(datetime)


def _unix_seconds(value: object) -> int:
    """An event time as Unix seconds, from Unix seconds or an ISO 8601 datetime (UTC if naive)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return math.floor(value)
    if isinstance(value, str):
        try:
            moment = _datetime.validate_python(value)
        except ValidationError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return math.floor(moment.timestamp())
    raise ValueError("must be Unix seconds or an ISO 8601 datetime, e.g. 2026-11-26T12:00:00Z")


UnixSeconds = Annotated[
    int,
    PlainValidator(_unix_seconds),
    WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}]},
        mode="validation",
    ),
]


def _from_unix_seconds(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return value


#: A stored Unix time shown as ISO 8601 UTC ('2026-11-26T12:00:00Z'), as every time in JSON is.
StoredTime = Annotated[datetime, BeforeValidator(_from_unix_seconds)]


def _scalar(value: object) -> Scalar:
    """A context value: a string, a finite number, a boolean or null (never a list or object)."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError("must be a string, a finite number, true, false or null")


ContextValue = Annotated[
    Scalar,
    PlainValidator(_scalar),
    WithJsonSchema(
        {"anyOf": [{"type": t} for t in ("string", "number", "boolean", "null")]}, mode="validation"
    ),
]


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(strict=True, ge=1, le=5, description="Stars, a whole number 1 to 5")


class RatingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: BookIdField
    title: str
    authors: str = Field(description="Authors as the data set lists them, comma-separated")
    rating: int = Field(ge=1, le=5)
    rated_at: StoredTime | None = Field(description="ISO 8601, UTC; unknown for some imports")


class ShelfItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: BookIdField
    title: str
    authors: str = Field(description="Authors as the data set lists them, comma-separated")
    added_at: StoredTime | None = Field(description="ISO 8601, UTC; unknown for some imports")


class EventIn(BaseModel):
    """One view, click or impression of a book, as a client saw it happen."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["view", "click", "impression"]
    book_id: BookIdField
    occurred_at: UnixSeconds | None = Field(
        None,
        description=(
            "When it happened: Unix seconds or an ISO 8601 datetime (UTC when it names no "
            "offset); within the last 7 days and at most 5 minutes ahead. Default: now"
        ),
        examples=[1_795_694_400, "2026-11-26T12:00:00Z"],
    )
    user_id: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="The data set's user id the event is about: required with an API key, "
        "absent with a bearer token (the event is then your own)",
    )
    experiment_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The experiment whose list showed the book"
    )
    variant: str | None = Field(
        None, min_length=1, max_length=50, description="The variant that list named"
    )
    context: dict[str, ContextValue] | None = Field(
        None,
        description=(
            f"Where it happened, e.g. the list and position: at most {MAX_CONTEXT_KEYS} keys, "
            f"scalar values, {MAX_CONTEXT_BYTES} bytes as compact JSON"
        ),
        examples=[{"list": "for-you", "position": 3, "model_version": "2"}],
    )

    @field_validator("context")
    @classmethod
    def _bounded(cls, context: dict[str, ContextValue] | None) -> dict[str, ContextValue] | None:
        if context is None:
            return None
        if len(context) > MAX_CONTEXT_KEYS:
            raise ValueError(f"at most {MAX_CONTEXT_KEYS} keys, got {len(context)}")
        try:
            size = len(json.dumps(context, separators=(",", ":"), ensure_ascii=False).encode())
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"at most {MAX_CONTEXT_BYTES} bytes as JSON, got {size}")
        return context


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsAccepted(BaseModel):
    accepted: int = Field(description="How many events were recorded")
