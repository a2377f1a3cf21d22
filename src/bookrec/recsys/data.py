"""Interactions as arrays, the catalog facts recommenders filter on, and id maps.

Dataset ids (books.csv `book_id`, ratings.csv `user_id`) never index arrays directly: an
IdMap turns them into dense row numbers and back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

#: IdMap.index answers this many ids or more from a table of positions (built once per map)
DENSE_LOOKUP_MIN_QUERIES = 4096
#: ... when the largest id is below this many times the number of ids (+ 65,536)
DENSE_LOOKUP_SLACK = 8


@dataclass(frozen=True)
class IdMap:
    """Sorted dataset ids; an id's index is its position."""

    ids: np.ndarray  # int64, sorted, unique

    @classmethod
    def of(cls, ids: np.ndarray | Sequence[int]) -> IdMap:
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Index of each id, -1 where the id is unknown."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self.ids):
            return np.full(ids.shape, -1, dtype=np.int64)
        if ids.size >= DENSE_LOOKUP_MIN_QUERIES and self._dense is not None:
            # a table lookup: ~15x faster than a binary search per id over millions of ratings
            position = np.take(self._dense, ids, mode="clip")
            outside = (ids < 0) | (ids >= len(self._dense))
            if outside.any():
                position[outside] = -1
            return position
        position = np.searchsorted(self.ids, ids)
        position = np.minimum(position, len(self.ids) - 1)
        return np.where(self.ids[position] == ids, position, -1)

    @cached_property
    def _dense(self) -> np.ndarray | None:
        """Position of every id from 0 to the largest (-1 for gaps), when the ids are small
        non-negative numbers (dataset ids mostly are); None when such a table would be big."""
        largest = int(self.ids[-1])
        if self.ids[0] < 0 or largest >= DENSE_LOOKUP_SLACK * len(self.ids) + 65_536:
            return None
        table = np.full(largest + 1, -1, dtype=np.int64)
        table[self.ids] = np.arange(len(self.ids), dtype=np.int64)
        return table


@dataclass(frozen=True)
class Interactions:
    """Who rated what, how, and when: parallel arrays over rows, indexed by IdMaps."""

    users: IdMap
    items: IdMap
    user_index: np.ndarray  # int32
    item_index: np.ndarray  # int32
    rating: np.ndarray  # float32
    timestamp: np.ndarray | None = None  # int64 unix seconds

    @classmethod
    def from_ids(
        cls,
        user_ids: np.ndarray,
        book_ids: np.ndarray,
        ratings: np.ndarray,
        timestamps: np.ndarray | None = None,
        items: IdMap | None = None,
    ) -> Interactions:
        """Build from dataset ids; `items` fixes the item space (e.g. the whole catalog)."""
        users = IdMap.of(user_ids)
        items = items if items is not None else IdMap.of(book_ids)
        item_index = items.index(book_ids)
        if (item_index < 0).any():
            raise ValueError("interactions name books outside the item space")
        return cls(
            users=users,
            items=items,
            user_index=users.index(user_ids).astype(np.int32),
            item_index=item_index.astype(np.int32),
            rating=np.asarray(ratings, dtype=np.float32),
            timestamp=None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.user_index)

    @property
    def has_timestamps(self) -> bool:
        return self.timestamp is not None and bool(len(self.timestamp))

    def matrix(self, values: np.ndarray | None = None) -> sp.csr_matrix:
        """Users x items CSR matrix of `values` (default: the ratings)."""
        data = self.rating if values is None else values
        return sp.csr_matrix(
            (data, (self.user_index, self.item_index)),
            shape=(len(self.users), len(self.items)),
            dtype=np.float32,
        )


class Texts:
    """Strings stored as one UTF-8 buffer and offsets: how a catalog's titles and authors sit
    in an artifact. A numpy unicode array pads every string to the longest (4 bytes a
    character): goodbooks' author column alone took 29 MB that way, in every artifact of a
    version; this takes its UTF-8 size, memory-mapped and shared by the workers like any
    array, and decodes one string when asked."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray) -> None:
        # plain views of memory-mapped files: slicing a np.memmap costs a subclass per slice
        self.buffer = np.asarray(buffer)  # uint8
        self.offsets = np.asarray(offsets)  # int64, len + 1
        self._bytes = memoryview(self.buffer.data)

    @classmethod
    def of(cls, strings: Sequence[str] | np.ndarray) -> Texts:
        encoded = [str(text).encode("utf-8") for text in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(raw) for raw in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        start, end = self.offsets[index : index + 2]
        return str(self._bytes[start:end], "utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[index] for index in range(len(self)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(list(self), dtype=dtype or str)


#: A column of strings: a numpy unicode array (as the database gives it) or Texts (loaded).
TextColumn = np.ndarray | Texts

#: The catalog's string columns, stored in artifacts as Texts.
_TEXT_FIELDS = ("title", "authors", "series", "tag_vocab_names")


@dataclass(frozen=True)
class Catalog:
    """Facts about items that filters need, aligned with an IdMap of book ids."""

    items: IdMap
    year: np.ndarray  # float32, NaN where unknown
    language: np.ndarray  # unicode strings, '' where unknown
    author_indptr: np.ndarray  # CSR of item -> author ids
    author_ids: np.ndarray
    tag_indptr: np.ndarray  # CSR of item -> tag ids
    tag_ids: np.ndarray
    # text, for content similarity and for explanations (optional: not every test builds it)
    title: TextColumn | None = None
    authors: TextColumn | None = None  # the data set's comma-separated author string
    series: TextColumn | None = None  # '' where none
    tag_vocab_ids: np.ndarray | None = None  # sorted tag ids used by the catalog
    tag_vocab_names: TextColumn | None = None  # their names, aligned

    @cached_property
    def language_family(self) -> np.ndarray:
        """Each item's language reduced to its family ('en-US', 'eng' -> 'en'), for filters."""
        from bookrec.recsys.languages import families

        return families(self.language)

    def title_of(self, index: int) -> str:
        """A book's title by item index, or its id when the catalog carries no titles."""
        if self.title is None:
            return f"book {int(self.items.ids[index])}"
        return str(self.title[index])

    def tag_names_of(self, tag_ids: np.ndarray) -> list[str]:
        if self.tag_vocab_ids is None or self.tag_vocab_names is None:
            return [str(t) for t in tag_ids]
        position = IdMap(self.tag_vocab_ids).index(tag_ids)
        return [
            str(self.tag_vocab_names[p]) if p >= 0 else str(t)
            for p, t in zip(position, tag_ids, strict=True)
        ]

    def tags_of(self, index: int) -> np.ndarray:
        return self.tag_ids[self.tag_indptr[index] : self.tag_indptr[index + 1]]

    def authors_of(self, index: int) -> np.ndarray:
        return self.author_ids[self.author_indptr[index] : self.author_indptr[index + 1]]

    @classmethod
    def empty(cls, items: IdMap) -> Catalog:
        n = len(items)
        return cls(
            items=items,
            year=np.full(n, np.nan, dtype=np.float32),
            language=np.full(n, "", dtype="<U16"),
            author_indptr=np.zeros(n + 1, dtype=np.int64),
            author_ids=np.zeros(0, dtype=np.int64),
            tag_indptr=np.zeros(n + 1, dtype=np.int64),
            tag_ids=np.zeros(0, dtype=np.int64),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The catalog as plain arrays, for artifacts (strings as UTF-8 buffer + offsets)."""
        arrays = {
            "catalog_items": self.items.ids,
            "catalog_year": self.year,
            "catalog_language": self.language.astype("<U16"),
            "catalog_author_indptr": self.author_indptr,
            "catalog_author_ids": self.author_ids,
            "catalog_tag_indptr": self.tag_indptr,
            "catalog_tag_ids": self.tag_ids,
        }
        if self.tag_vocab_ids is not None:
            arrays["catalog_tag_vocab_ids"] = self.tag_vocab_ids
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                texts = value if isinstance(value, Texts) else Texts.of(value)
                arrays[f"catalog_{name}_utf8"] = texts.buffer
                arrays[f"catalog_{name}_offsets"] = texts.offsets
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Catalog:
        return cls(
            items=IdMap(arrays["catalog_items"]),
            year=arrays["catalog_year"],
            language=arrays["catalog_language"],
            author_indptr=arrays["catalog_author_indptr"],
            author_ids=arrays["catalog_author_ids"],
            tag_indptr=arrays["catalog_tag_indptr"],
            tag_ids=arrays["catalog_tag_ids"],
            tag_vocab_ids=arrays.get("catalog_tag_vocab_ids"),
            **{name: _texts(arrays, name) for name in _TEXT_FIELDS},
        )

    def authors_matrix(self) -> sp.csr_matrix:
        return _membership(self.author_indptr, self.author_ids)

    def tags_matrix(self) -> sp.csr_matrix:
        return _membership(self.tag_indptr, self.tag_ids)


def _texts(arrays: dict[str, np.ndarray], name: str) -> TextColumn | None:
    """A string column from an artifact: Texts, or the unicode array older versions saved."""
    if f"catalog_{name}_utf8" in arrays:
        return Texts(arrays[f"catalog_{name}_utf8"], arrays[f"catalog_{name}_offsets"])
    return arrays.get(f"catalog_{name}")


def _membership(indptr: np.ndarray, ids: np.ndarray) -> sp.csr_matrix:
    """items x ids boolean matrix from a CSR pair."""
    width = int(ids.max()) + 1 if len(ids) else 1
    return sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), ids, indptr), shape=(len(indptr) - 1, width)
    )


@dataclass(frozen=True)
class Filters:
    """What a list may contain: tags (any of), language, year range, authors to leave out."""

    tags: tuple[int, ...] = ()
    language: str | None = None  # any spelling of the language: 'en', 'eng' and 'en-GB' match alike
    year_min: int | None = None
    year_max: int | None = None
    exclude_authors: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.tags
            or self.language
            or self.year_min is not None
            or self.year_max is not None
            or self.exclude_authors
        )

    def allowed(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over the catalog's items that pass every filter."""
        mask = np.ones(len(catalog.items), dtype=bool)
        if self.language:
            from bookrec.recsys.languages import family

            mask &= catalog.language_family == family(self.language)
        if self.year_min is not None:
            mask &= catalog.year >= self.year_min  # NaN compares False: unknown years drop out
        if self.year_max is not None:
            mask &= catalog.year <= self.year_max
        if self.tags:
            mask &= _has_any(catalog.tag_indptr, catalog.tag_ids, self.tags)
        if self.exclude_authors:
            mask &= ~_has_any(catalog.author_indptr, catalog.author_ids, self.exclude_authors)
        return mask


def _has_any(indptr: np.ndarray, ids: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    """Per item: does its CSR row hold any of `wanted`?"""
    hits = np.concatenate([[0], np.cumsum(np.isin(ids, np.asarray(wanted, dtype=np.int64)))])
    return np.asarray(hits[indptr[1:]] - hits[indptr[:-1]] > 0)


@dataclass(frozen=True)
class ReaderHistory:
    """What one reader did, in dataset book ids: the live input to `recommend`."""

    book_ids: np.ndarray  # int64
    ratings: np.ndarray  # float32, same length
    timestamps: np.ndarray | None = None

    @classmethod
    def empty(cls) -> ReaderHistory:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def of(cls, pairs: Sequence[tuple[int, float]]) -> ReaderHistory:
        if not pairs:
            return cls.empty()
        books, ratings = zip(*pairs, strict=True)
        return cls(np.asarray(books, np.int64), np.asarray(ratings, np.float32))

    def __len__(self) -> int:
        return len(self.book_ids)
