"""What the API says about books and tags."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bookrec.catalog.models import Book


class BookSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: int = Field(description="The data set's book id (books.csv `book_id`)")
    title: str
    authors: str = Field(description="Authors as the data set lists them, comma-separated")
    original_publication_year: int | None
    language_code: str | None
    average_rating: float | None
    ratings_count: int | None
    image_url: str | None
    small_image_url: str | None


class BookSuggestion(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    book_id: int
    title: str
    authors: str
    original_publication_year: int | None


class BookDetail(BookSummary):
    goodreads_book_id: int | None
    original_title: str | None
    series: str | None
    isbn: str | None
    isbn13: str | None
    author_names: list[str] = Field(description="Authors, one per entry, in the data set's order")
    tags: list[str] = Field(description="The book's most-used tags, most used first")

    @classmethod
    def of(cls, book: Book, tags: list[str]) -> BookDetail:
        return cls.model_validate(
            {
                **BookSummary.model_validate(book).model_dump(),
                "goodreads_book_id": book.goodreads_book_id,
                "original_title": book.original_title,
                "series": book.series,
                "isbn": book.isbn,
                "isbn13": book.isbn13,
                "author_names": [link.author.name for link in book.author_links],
                "tags": tags,
            }
        )


class TagOut(BaseModel):
    tag_id: int
    name: str
    book_count: int = Field(description="How many books carry this tag")
