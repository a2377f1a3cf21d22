"""Ranked, typo-tolerant book search on PostgreSQL and SQLite, one result shape on both.

A query is first matched word by word (every word, the last one also as a prefix, so
type-ahead works) against title, original title, authors, series and tags, ranked by
relevance (PostgreSQL `ts_rank` over a weighted tsvector; SQLite FTS5 `bm25` with the same
column weights), then by how often a book is rated. When no book has every word, the query is
probably misspelt: candidates sharing trigrams with it come from a trigram index (PostgreSQL
`pg_trgm` word_similarity; SQLite an FTS5 trigram table ranked by bm25) over title, original
title, authors and series, and are ranked here, the same way on both, by the edit similarity
of each query word to the closest word of the book. Migration 0009 creates the indexes and
keeps them in step with `books`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from bookrec.catalog.models import Book

MAX_WORDS = 12
# SQLite fuzzy search scores at most this many trigram candidates (the best by bm25).
FUZZY_CANDIDATES = 300
# A misspelt query matches a book when its words are this similar, on average, to the
# book's closest words (see `similarity`).
FUZZY_THRESHOLD = 0.75
# PostgreSQL's candidates: pg_trgm word_similarity at least this.
CANDIDATE_SIMILARITY = 0.3

# Spelled exactly as migration 0009's trigram index, so that PostgreSQL can use it.
_FUZZY_TEXT: ColumnElement[str] = literal_column(
    "(books.title || ' ' || coalesce(books.original_title, '') || ' ' || books.authors"
    " || ' ' || coalesce(books.series, ''))"
)
_SEARCH_VECTOR: ColumnElement[object] = literal_column("books.search_vector")
# title, original_title, authors, series, tag_names: as PostgreSQL's weights A, A, B, B, C
_BM25_WEIGHTS = "10.0, 10.0, 4.0, 4.0, 2.0"
_WORD = re.compile(r"\w+", re.UNICODE)


def words_of(text: str) -> list[str]:
    """The searchable words of a text, lower-cased (punctuation is ignored)."""
    return [w for w in _WORD.findall(text.lower()) if w.strip("_")]


@dataclass(frozen=True)
class Hits:
    """One page of matching books, best first, and how many match in all."""

    books: list[Book]
    total: int
    fuzzy: bool


def search(
    session: Session,
    q: str,
    filters: Sequence[ColumnElement[bool]],
    offset: int,
    limit: int,
) -> Hits:
    """Books matching `q` and every filter: word matches, else typo-tolerant matches."""
    words = words_of(q)[:MAX_WORDS]
    if not words:
        return Hits([], 0, fuzzy=False)
    postgres = session.get_bind().dialect.name == "postgresql"
    statement, relevance = (_postgres_words if postgres else _sqlite_words)(words)
    statement = statement.where(*filters)
    total = int(
        session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    )
    if total:
        ordered = statement.order_by(*relevance, *_POPULAR_FIRST)
        books = list(session.scalars(ordered.offset(offset).limit(limit)))
        return Hits(books, total, fuzzy=False)
    ranked = (_postgres_fuzzy if postgres else _sqlite_fuzzy)(session, words, filters)
    return Hits(ranked[offset : offset + limit], len(ranked), fuzzy=True)


_POPULAR_FIRST = (Book.ratings_count.desc().nulls_last(), Book.book_id)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _tsquery(words: list[str]) -> ColumnElement[object]:
    terms = [f"'{w}'" for w in words[:-1]] + [f"'{words[-1]}':*"]
    return func.to_tsquery(literal_column("'simple'::regconfig"), " & ".join(terms))


def _postgres_words(words: list[str]) -> tuple[Select[Book], list[ColumnElement[object]]]:
    query = _tsquery(words)
    rank = func.ts_rank(_SEARCH_VECTOR, query, 1)
    statement = select(Book).where(_SEARCH_VECTOR.op("@@")(query))
    return statement, [rank.desc()]


def _postgres_fuzzy(
    session: Session, words: list[str], filters: Sequence[ColumnElement[bool]]
) -> list[Book]:
    phrase = literal(" ".join(words))
    # A loose threshold for candidates (one wrong letter in a 6-letter word leaves less than
    # pg_trgm's default 0.6); `_best_matches` then keeps the close ones.
    session.execute(
        select(
            func.set_config("pg_trgm.word_similarity_threshold", str(CANDIDATE_SIMILARITY), True)
        )
    )
    statement = (
        select(Book)
        .where(phrase.op("<%")(_FUZZY_TEXT), *filters)
        .order_by(func.word_similarity(phrase, _FUZZY_TEXT).desc())
        .limit(FUZZY_CANDIDATES)
    )
    return _best_matches(words, session.scalars(statement).all())


# ---------------------------------------------------------------------------------------------
# SQLite


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _sqlite_words(words: list[str]) -> tuple[Select[Book], list[ColumnElement[object]]]:
    match = " ".join(_fts_phrase(w) for w in words[:-1])
    match = f"{match} {_fts_phrase(words[-1])}*".strip()
    hits = (
        text(
            f"SELECT rowid AS book_id, bm25(books_fts, {_BM25_WEIGHTS}) AS score "
            "FROM books_fts WHERE books_fts MATCH :match"
        )
        .bindparams(match=match)
        .columns(book_id=Integer, score=Float)
        .subquery("fts")
    )
    statement = select(Book).join(hits, hits.c.book_id == Book.book_id)
    return statement, [hits.c.score.asc()]  # bm25: lower is better


def _sqlite_fuzzy(
    session: Session, words: list[str], filters: Sequence[ColumnElement[bool]]
) -> list[Book]:
    grams = sorted({w[i : i + 3] for w in words if len(w) >= 3 for i in range(len(w) - 2)})
    if not grams:
        return []
    match = (
        "{title original_title authors series} : ("
        + " OR ".join(_fts_phrase(g) for g in grams)
        + ")"
    )
    candidates = (
        text(
            "SELECT rowid AS book_id FROM books_trigram WHERE books_trigram MATCH :match "
            "ORDER BY rank LIMIT :limit"
        )
        .bindparams(match=match, limit=FUZZY_CANDIDATES)
        .columns(book_id=Integer)
        .subquery("trigram")
    )
    books = session.scalars(
        select(Book).join(candidates, candidates.c.book_id == Book.book_id).where(*filters)
    ).all()
    return _best_matches(words, books)


def _best_matches(words: list[str], books: Sequence[Book]) -> list[Book]:
    """The candidates close enough to the query, closest first, then the most rated."""
    scored = [(similarity(words, _fuzzy_words(book)), book) for book in books]
    kept = [(score, book) for score, book in scored if score >= FUZZY_THRESHOLD]
    kept.sort(key=lambda pair: (-pair[0], -(pair[1].ratings_count or 0), pair[1].book_id))
    return [book for _, book in kept]


def _fuzzy_words(book: Book) -> set[str]:
    fields = (book.title, book.original_title or "", book.authors, book.series or "")
    return {word for field in fields for word in words_of(field)}


def similarity(query_words: Sequence[str], document_words: set[str]) -> float:
    """Mean over query words of the closest document word's edit similarity (0..1: difflib's
    ratio, 2 * matching characters / total characters; one wrong letter in 'shawshank' is
    0.89). The last query word may also be the start of a document word (type-ahead)."""
    if not query_words or not document_words:
        return 0.0
    total = 0.0
    for position, word in enumerate(query_words):
        last = position == len(query_words) - 1
        best = 0.0
        for other in document_words:
            if last and len(other) > len(word):
                other = other[: len(word)]
            matcher = SequenceMatcher(None, word, other)
            if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
                best = max(best, matcher.ratio())
        total += best
    return total / len(query_words)
