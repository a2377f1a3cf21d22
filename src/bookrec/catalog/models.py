"""ORM models of the catalog. `book_id` and `tag_id` are the data set's own ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookrec.db.base import Base, TimestampMixin, UTCDateTime

# Search structures of migration 0009 that the ORM does not map: PostgreSQL's generated
# `search_vector` and its indexes, SQLite's FTS5 tables (and their shadow tables).
SEARCH_COLUMNS = frozenset({"search_vector"})
SEARCH_INDEXES = frozenset({"ix_books_search_vector", "ix_books_fuzzy_text"})
SEARCH_TABLE_PREFIXES = ("books_fts", "books_trigram")


class Book(TimestampMixin, Base):
    __tablename__ = "books"
    __table_args__ = (Index("ix_books_updated_at", "updated_at"),)

    book_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    goodreads_book_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    best_book_id: Mapped[int | None] = mapped_column(BigInteger)
    work_id: Mapped[int | None] = mapped_column(BigInteger)
    books_count: Mapped[int | None] = mapped_column(Integer)
    isbn: Mapped[str | None] = mapped_column(String(32), index=True)
    isbn13: Mapped[str | None] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(Text)
    original_title: Mapped[str | None] = mapped_column(Text)
    series: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[str] = mapped_column(Text, default="")
    original_publication_year: Mapped[int | None] = mapped_column(Integer, index=True)
    language_code: Mapped[str | None] = mapped_column(String(16), index=True)
    average_rating: Mapped[float | None] = mapped_column(Float)
    ratings_count: Mapped[int | None] = mapped_column(BigInteger)
    work_ratings_count: Mapped[int | None] = mapped_column(BigInteger)
    work_text_reviews_count: Mapped[int | None] = mapped_column(BigInteger)
    ratings_1: Mapped[int | None] = mapped_column(BigInteger)
    ratings_2: Mapped[int | None] = mapped_column(BigInteger)
    ratings_3: Mapped[int | None] = mapped_column(BigInteger)
    ratings_4: Mapped[int | None] = mapped_column(BigInteger)
    ratings_5: Mapped[int | None] = mapped_column(BigInteger)
    image_url: Mapped[str | None] = mapped_column(Text)
    small_image_url: Mapped[str | None] = mapped_column(Text)
    # Names of the book's most-used tags, for search (see catalog.repository.refresh_tag_names)
    tag_names: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Set when an admin deletes the book: it leaves the catalogue, its ratings stay
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author_links: Mapped[list[BookAuthor]] = relationship(
        back_populates="book", cascade="all, delete-orphan", order_by="BookAuthor.position"
    )


class Author(Base):
    __tablename__ = "authors"

    author_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)


class BookAuthor(Base):
    __tablename__ = "book_authors"

    book_id: Mapped[int] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), primary_key=True
    )
    author_id: Mapped[int] = mapped_column(
        ForeignKey(Author.author_id, ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)

    book: Mapped[Book] = relationship(back_populates="author_links")
    author: Mapped[Author] = relationship(lazy="joined")


class Tag(Base):
    __tablename__ = "tags"

    tag_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(512), index=True)


class BookTag(Base):
    __tablename__ = "book_tags"

    book_id: Mapped[int] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey(Tag.tag_id, ondelete="CASCADE"), primary_key=True, index=True
    )
    count: Mapped[int] = mapped_column(Integer, default=0)
