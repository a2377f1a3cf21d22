"""The catalog as the recommenders see it: arrays of ids, years, languages, authors and tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from bookrec.catalog.models import Book, BookAuthor, BookTag, Tag
from bookrec.recsys.data import Catalog, IdMap


def load_catalog(connection: Connection) -> Catalog:
    """Books with the facts filters use: year, language, authors, tags."""
    rows = connection.execute(
        select(
            Book.book_id,
            Book.original_publication_year,
            Book.language_code,
            Book.title,
            Book.authors,
            Book.series,
        )
        .where(Book.deleted_at.is_(None))
        .order_by(Book.book_id)
    ).all()
    items = IdMap(np.asarray([r[0] for r in rows], dtype=np.int64))
    year = np.asarray([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float32)
    language = np.asarray([r[2] or "" for r in rows], dtype="<U16")
    author_indptr, author_ids = _csr(
        connection.execute(select(BookAuthor.book_id, BookAuthor.author_id)).all(), items
    )
    tag_indptr, tag_ids = _csr(
        connection.execute(select(BookTag.book_id, BookTag.tag_id)).all(), items
    )
    used_tags = np.unique(tag_ids)
    names = {row.tag_id: row.name for row in connection.execute(select(Tag.tag_id, Tag.name))}
    return Catalog(
        items,
        year,
        language,
        author_indptr,
        author_ids,
        tag_indptr,
        tag_ids,
        title=np.asarray([r[3] for r in rows], dtype=str),
        authors=np.asarray([r[4] or "" for r in rows], dtype=str),
        series=np.asarray([r[5] or "" for r in rows], dtype=str),
        tag_vocab_ids=used_tags,
        tag_vocab_names=np.asarray([names.get(int(t), str(t)) for t in used_tags], dtype=str),
    )


def _csr(pairs: Sequence[Any], items: IdMap) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        return np.zeros(len(items) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    array = np.asarray(pairs, dtype=np.int64)
    rows = items.index(array[:, 0])
    keep = rows >= 0
    rows, values = rows[keep], array[keep, 1]
    order = np.lexsort((values, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(items)))])
    return indptr.astype(np.int64), values[order]
