"""What several pages share: lists from the recommendation service, form errors, paging."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from bookrec.errors import BookrecError, ModelUnavailable, ServiceUnavailable
from bookrec.serving.schemas import RecommendedBook
from bookrec.serving.service import ListRequest, ReaderRef
from bookrec.web.state import state_of

NOTICES = {
    "registered": "Welcome! Your account is ready.",
    "logged-in": "You are logged in.",
    "logged-out": "You are logged out.",
    "rated": "Your rating is saved; your recommendations have changed.",
    "unrated": "Your rating is removed.",
    "shelved": "Added to your shelf.",
    "unshelved": "Removed from your shelf.",
    "activated": "The model version is active now; every worker switches within seconds.",
    "rolled-back": "Rolled back: the previous model version is active again.",
    "training": "Training started.",
    "experiment-created": "Experiment created as a draft.",
    "experiment-started": "Experiment started.",
    "experiment-stopped": "Experiment stopped.",
    "experiment-shipped": "Variant shipped.",
    "key-revoked": "API key revoked.",
}


NO_MODEL = (
    "Recommendations appear here once a model is trained (an admin starts one on the jobs page)."
)


@dataclass
class FormErrors:
    """Errors to show next to their fields, and one for the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    form: str | None = None

    @classmethod
    def of(cls, exc: BookrecError, default_field: str | None = None) -> FormErrors:
        name = exc.extra.get("field") or default_field
        if isinstance(name, str):
            return cls(fields={name: exc.detail})
        return cls(form=exc.detail)

    def __bool__(self) -> bool:
        return bool(self.fields or self.form)


@dataclass(frozen=True)
class BookList:
    """A recommendation list as a page shows it, or why there is none."""

    items: list[RecommendedBook]
    model_version: int | None = None
    unavailable: str | None = None


def recommended(
    request: Request, list_request: ListRequest, reader: ReaderRef | None = None
) -> BookList:
    """One list from the worker's `RecommendationService` (the API's answer path)."""
    service = state_of(request).serving.recommendations
    try:
        answer = service.answer(list_request, reader)
    except ModelUnavailable:
        return BookList(items=[], unavailable=NO_MODEL)
    except ServiceUnavailable as exc:
        return BookList(items=[], unavailable=exc.detail)
    listing = answer.listing()
    return BookList(items=listing.items, model_version=listing.model_version)


@dataclass(frozen=True)
class Paging:
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def query_without(params: dict[str, Any], **changes: Any) -> str:
    """The query string of `params` with `changes` (None drops a key): pagination links."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")}, doseq=True)
