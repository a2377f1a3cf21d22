"""An admin's changes to the catalogue: add, edit and (softly) delete books.

A deleted book keeps its row (ratings and shelves stay for history and for GDPR exports) but
leaves every list, search and recommendation; its id is never handed out again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from bookrec.catalog import repository
from bookrec.catalog.models import Book, BookTag, Tag
from bookrec.db.base import table_of, utcnow
from bookrec.errors import Conflict, InvalidInput, NotFound
from bookrec.recsys.languages import UnknownLanguage, requested_family

MAX_TAGS = 50


def _isbn(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    digits = re.sub(r"[\s-]", "", value).upper()
    pattern = r"\d{9}[\dX]" if length == 10 else r"\d{13}"
    if not re.fullmatch(pattern, digits):
        kind = "9 digits and a check digit (0-9 or X)" if length == 10 else "13 digits"
        raise ValueError(f"an ISBN-{length} is {kind} (hyphens and spaces allowed): {value!r}")
    return digits


class BookFields(BaseModel):
    """What an admin may set on a book; on PATCH, only the fields sent change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=500)
    authors: list[str] = Field(
        default_factory=list, max_length=20, description="Author names, in order"
    )
    original_title: str | None = Field(None, max_length=500)
    series: str | None = Field(None, max_length=500)
    original_publication_year: int | None = Field(None, ge=-5000, le=2100)
    language_code: str | None = Field(None, max_length=16, description="e.g. eng or en-US")
    tags: list[str] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="Tag names; a name no tag has yet becomes a new tag",
    )
    isbn: str | None = Field(None, max_length=32, description="ISBN-10")
    isbn13: str | None = Field(None, max_length=32, description="ISBN-13")
    image_url: HttpUrl | None = None
    small_image_url: HttpUrl | None = None

    @field_validator("authors", "tags")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        cleaned = [" ".join(name.split()) for name in names]
        for name in cleaned:
            if not 1 <= len(name) <= 200:
                raise ValueError(f"each name has 1 to 200 characters: {name!r}")
        return list(dict.fromkeys(cleaned))

    @field_validator("authors")
    @classmethod
    def _no_commas(cls, names: list[str]) -> list[str]:
        # the catalogue's author string is the names joined by commas
        for name in names:
            if "," in name:
                raise ValueError(f"one name per entry, without commas: {name!r}")
        return names

    @field_validator("isbn")
    @classmethod
    def _isbn10(cls, value: str | None) -> str | None:
        return _isbn(value, 10)

    @field_validator("isbn13")
    @classmethod
    def _isbn13(cls, value: str | None) -> str | None:
        return _isbn(value, 13)


class BookPatch(BookFields):
    title: str = Field(None, min_length=1, max_length=500)  # type: ignore[assignment]


def _check_language(code: str | None) -> None:
    if code is None:
        return
    try:
        requested_family(code)
    except UnknownLanguage as exc:
        raise InvalidInput(f"language_code: {exc}", field="language_code") from None


def _check_isbns(session: Session, fields: dict[str, Any], book_id: int | None) -> None:
    for name in ("isbn", "isbn13"):
        value = fields.get(name)
        if not value:
            continue
        clash = session.scalar(
            select(Book.book_id).where(
                or_(Book.isbn == value, Book.isbn13 == value),
                Book.deleted_at.is_(None),
                Book.book_id != (book_id or 0),
            )
        )
        if clash is not None:
            raise Conflict(f"{name} {value} is already the ISBN of book {clash}", field=name)


def _tag_ids(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of the named tags, creating the ones no tag has yet."""
    found = dict(session.execute(select(Tag.name, Tag.tag_id).where(Tag.name.in_(names))).all())
    next_id = int(session.scalar(select(func.coalesce(func.max(Tag.tag_id), -1))) or 0) + 1
    for name in names:
        if name not in found:
            session.execute(insert(table_of(Tag)).values(tag_id=next_id, name=name))
            found[name] = next_id
            next_id += 1
    return [int(found[name]) for name in names]


def _write_links(session: Session, book: Book, fields: dict[str, Any]) -> None:
    connection = session.connection()
    if "authors" in fields:
        repository.sync_book_authors(connection, {book.book_id: fields["authors"]})
    if "tags" in fields:
        session.execute(delete(table_of(BookTag)).where(BookTag.book_id == book.book_id))
        ids = _tag_ids(session, fields["tags"])
        if ids:
            # the admin's order is the book's order: the first tag counts most
            rows = [
                {"book_id": book.book_id, "tag_id": t, "count": len(ids) - i}
                for i, t in enumerate(ids)
            ]
            session.execute(insert(table_of(BookTag)), rows)
        repository.refresh_tag_names(connection, [book.book_id])


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k not in ("authors", "tags")}
    for key in ("image_url", "small_image_url"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    if "authors" in fields:
        values["authors"] = ", ".join(fields["authors"])
    return values


def create_book(session: Session, data: BookFields) -> Book:
    """Add a book under the next unused id (ids of deleted books are never reused)."""
    fields = data.model_dump()
    _check_language(data.language_code)
    _check_isbns(session, fields, None)
    book_id = int(session.scalar(select(func.coalesce(func.max(Book.book_id), 0))) or 0) + 1
    book = Book(book_id=book_id, **_columns(fields))
    session.add(book)
    session.flush()
    _write_links(session, book, fields)
    session.flush()
    return book


def live_book(session: Session, book_id: int) -> Book:
    book = session.get(Book, book_id)
    if book is None or book.deleted_at is not None:
        raise NotFound("book", book_id)
    return book


def update_book(session: Session, book_id: int, patch: BookPatch) -> tuple[Book, list[str]]:
    """Change the fields sent; returns the book and the names of the fields changed."""
    book = live_book(session, book_id)
    fields = patch.model_dump(exclude_unset=True)
    if "title" in fields and fields["title"] is None:
        raise InvalidInput("title: a book keeps a title", field="title")
    _check_language(fields.get("language_code"))
    _check_isbns(session, fields, book_id)
    for key, value in _columns(fields).items():
        setattr(book, key, value)
    _write_links(session, book, fields)
    book.updated_at = utcnow()
    session.flush()
    return book, sorted(fields)


def delete_book(session: Session, book_id: int) -> Book:
    book = live_book(session, book_id)
    book.deleted_at = book.updated_at = utcnow()
    session.flush()
    return book
