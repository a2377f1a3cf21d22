"""Shapes shared by every router: pages and problem details."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from bookrec.serving.service import MAX_K

__all__ = ["MAX_K", "MAX_PAGE_SIZE", "PROBLEM", "Page"]

T = TypeVar("T")

MAX_PAGE_SIZE = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    page: int = Field(description="1-based page number")
    size: int = Field(description="Items per page (at most 100)")
    total: int = Field(description="Items matching, over all pages")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, object]] | None = None


#: An OpenAPI response entry for errors, which are problem+json documents.
PROBLEM: dict[str, Any] = {"model": Problem, "content": {"application/problem+json": {}}}
