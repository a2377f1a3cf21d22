"""Content-based recommendations: books that read like the ones a reader liked.

Every book becomes one sparse vector made of four TF-IDF blocks:

* title words (uni- to `ngram_max`-grams, English stop words dropped, sublinear tf),
* authors (each whole name is one token, from the author string or else the author ids),
* series (the whole series name is one token),
* tags (each tag id is one token; its idf keeps "to-read"-like tags from dominating).

Each block is L2-normalised and scaled by the square root of its weight (title 1,
authors and series `author_weight`, tags `tag_weight`) before the blocks are stacked and the
whole row is L2-normalised again. The dot product of two books is then
sum_k w_k cos_k / norm, so weights act linearly on the per-field cosines (authors count twice
as much as title words by default). Books without text still get author/tag blocks; a book
with nothing at all has a zero vector and scores 0 everywhere.

A reader's profile is p = sum_j w_j v_j over their history with rating-centred weights
w_j = r_j - c, where the centre c is the reader's mean rating shrunk towards the training
mean by one pseudo-rating (so a single 5-star book is liked, a single 2-star one is not); a
history without any spread (e.g. all ratings 1 in implicit data) counts every book as liked.
Scores are cos(p, v_i) = sum_j w_j (v_j . v_i) / |p|: the sum runs over each history book's
stored top-`neighbours` cosine neighbours (and the book itself), so books outside every
neighbour list score 0.
Similar books use the exact cosine against every book.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from bookrec.recsys.artifacts import read_artifact, write_artifact
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.data import Catalog, Interactions, ReaderHistory

MIN_REASON_COSINE = 0.05  # weaker resemblance is no reason to name a book
CHUNK_CELLS = 1 << 24  # dense cells per block when computing neighbours (64 MB of float32)


class ContentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_features: int = Field(50_000, ge=1, description="title vocabulary size")
    min_df: int = Field(1, ge=1, description="title terms in fewer books are dropped")
    ngram_max: int = Field(2, ge=1, le=3)
    author_weight: float = Field(2.0, ge=0, description="weight of authors and of series")
    tag_weight: float = Field(1.0, ge=0)
    neighbours: int = Field(100, ge=1, description="cosine neighbours kept per book")


def _names(text: str, separator: str = ",") -> list[str]:
    return [name.strip() for name in text.split(separator) if name.strip()]


def _tokens(text: str) -> list[str]:
    """Whole names as tokens, case-folded."""
    return [name.casefold() for name in _names(text)]


def author_names(catalog: Catalog, index: int) -> list[str]:
    """A book's authors: names from the author string, else its author ids."""
    if catalog.authors is not None and str(catalog.authors[index]).strip():
        return _names(str(catalog.authors[index]))
    return [f"author {a}" for a in catalog.authors_of(index)]


def _series_of(catalog: Catalog, index: int) -> str:
    return "" if catalog.series is None else str(catalog.series[index]).strip()


def _idf_block(membership: sp.csr_matrix) -> sp.csr_matrix:
    """TF-IDF of a books x tokens 0/1 matrix (smoothed idf; tf is 1)."""
    from sklearn.feature_extraction.text import TfidfTransformer  # type: ignore[import-untyped]

    membership = sp.csr_matrix(membership, dtype=np.float32)
    membership.sum_duplicates()
    membership.data[:] = 1
    return sp.csr_matrix(TfidfTransformer().fit_transform(membership), dtype=np.float32)


def _token_block(documents: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """TF-IDF where each document is a list of whole tokens (author names, a series)."""
    vocabulary: dict[str, int] = {}
    indptr, indices = [0], []
    for tokens in documents:
        indices.extend(sorted({vocabulary.setdefault(t, len(vocabulary)) for t in tokens}))
        indptr.append(len(indices))
    shape = (len(documents), len(vocabulary))
    if not vocabulary:
        return sp.csr_matrix(shape, dtype=np.float32)
    ones = np.ones(len(indices), dtype=np.float32)
    return _idf_block(sp.csr_matrix((ones, indices, indptr), shape=shape))


def item_vectors(catalog: Catalog, config: ContentConfig) -> sp.csr_matrix:
    """The L2-normalised, weighted TF-IDF vector of every catalog book (n_items x features)."""
    # scikit-learn is needed to fit only: serving workers never import it (~100 MB, 2 s)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize  # type: ignore[import-untyped]

    n = len(catalog.items)
    blocks: list[tuple[sp.csr_matrix, float]] = []
    if catalog.title is not None:
        try:
            title_block = TfidfVectorizer(
                max_features=config.max_features,
                min_df=config.min_df,
                ngram_range=(1, config.ngram_max),
                stop_words="english",
                strip_accents="unicode",
                sublinear_tf=True,
                dtype=np.float32,
            ).fit_transform([str(t) for t in catalog.title])
            blocks.append((title_block, 1.0))
        except ValueError:  # no usable words in any title (or min_df above the book count)
            pass
    authors = [[a.casefold() for a in author_names(catalog, i)] for i in range(n)]
    blocks.append((_token_block(authors), config.author_weight))
    series = [[s.casefold()] if (s := _series_of(catalog, i)) else [] for i in range(n)]
    blocks.append((_token_block(series), config.author_weight))
    if len(catalog.tag_ids):
        blocks.append((_idf_block(catalog.tags_matrix()), config.tag_weight))
    parts = [
        normalize(sp.csr_matrix(block, dtype=np.float32)) * np.float32(math.sqrt(weight))
        for block, weight in blocks
        if weight > 0 and block.nnz
    ]
    if not parts:
        return sp.csr_matrix((n, 0), dtype=np.float32)
    stacked = sp.csr_matrix(sp.hstack(parts, format="csr"), dtype=np.float32)
    return sp.csr_matrix(normalize(stacked), dtype=np.float32)


def top_neighbours(vectors: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's k largest positive cosines to other rows (n x n sparse, self excluded)."""
    n = vectors.shape[0]
    k = min(k, n - 1)
    if k <= 0 or vectors.nnz == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    transposed = vectors.T.tocsr()
    chunk = max(1, min(n, CHUNK_CELLS // n))
    rows, cols, values = [], [], []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = np.asarray((vectors[start:stop] @ transposed).toarray(), dtype=np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = 0
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(block, part, axis=1)
        keep = best > 0
        rows.append(np.nonzero(keep)[0] + start)
        cols.append(part[keep])
        values.append(best[keep])
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


class ContentRecommender(ScoringRecommender):
    """TF-IDF over titles, authors, series and tags; readers are rating-weighted profiles."""

    algo: ClassVar[str] = "content"
    config_class: ClassVar[type[ContentConfig]] = ContentConfig

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or ContentConfig()
        self.catalog: Catalog | None = None
        self.vectors = sp.csr_matrix((0, 0), dtype=np.float32)
        self.neighbours = sp.csr_matrix((0, 0), dtype=np.float32)
        self.global_mean = math.nan  # mean training rating; NaN when fitted without ratings
        self._tag_frequency: np.ndarray | None = None

    def fit(self, interactions: Interactions, catalog: Catalog) -> ContentRecommender:
        """Vectorise the catalog; the interactions only give the mean rating."""
        self.vectors = item_vectors(catalog, self.config)
        self.neighbours = top_neighbours(self.vectors, self.config.neighbours)
        self.global_mean = float(interactions.rating.mean()) if len(interactions) else math.nan
        self.catalog = catalog
        self._tag_frequency = None
        return self

    # -- scoring -----------------------------------------------------------------------------
    def weights(self, histories: sp.csr_matrix) -> sp.csr_matrix:
        """Rating-centred profile weights for each history row (same sparsity)."""
        weights = sp.csr_matrix(histories, dtype=np.float32, copy=True)
        counts = np.diff(weights.indptr)
        rows = np.repeat(np.arange(weights.shape[0]), counts)
        sums = np.bincount(rows, weights=weights.data, minlength=weights.shape[0])
        if math.isfinite(self.global_mean):
            centre = (sums + self.global_mean) / (counts + 1)
        else:
            centre = sums / np.maximum(counts, 1)
        weights.data -= centre[rows].astype(np.float32)
        spread = np.bincount(rows, weights=np.abs(weights.data), minlength=weights.shape[0])
        flat = spread[rows] <= 1e-6
        weights.data[flat] = 1.0  # no spread at all: every book counts as liked
        return weights

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """Cosine of each history's profile to every book (0 outside the neighbour lists)."""
        self.require_catalog()
        weights = self.weights(histories)
        profile = weights @ self.vectors
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
        raw = np.asarray((weights @ self.neighbours).toarray(), dtype=np.float32)
        # the neighbour lists leave each book out; add its cosine with itself (1, or 0 if empty)
        own = weights.tocoo()
        has_vector = (np.diff(self.vectors.indptr) > 0)[own.col]
        np.add.at(raw, (own.row[has_vector], own.col[has_vector]), own.data[has_vector])
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        raw *= inverse[:, None].astype(np.float32)
        return raw

    def item_scores(self, item_index: int) -> np.ndarray:
        """Exact cosine of book `item_index` to every book."""
        self.require_catalog()
        return np.asarray((self.vectors @ self.vectors[item_index].T).toarray(), np.float32).ravel()

    # -- explanations ------------------------------------------------------------------------
    def _tag_frequencies(self, catalog: Catalog) -> np.ndarray:
        if self._tag_frequency is None:
            width = int(catalog.tag_ids.max()) + 1 if len(catalog.tag_ids) else 1
            self._tag_frequency = np.bincount(catalog.tag_ids, minlength=width)
        return self._tag_frequency

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """Which liked books it resembles (shared author or series) and which liked tags it has."""
        catalog = self.require_catalog()
        index = int(catalog.items.index([book_id])[0])
        if index < 0 or not len(history):
            return []
        row = self.weights(self.history_row(history))
        liked = row.data > 0
        items, weights = row.indices[liked], row.data[liked]
        keep = items != index
        items, weights = items[keep], weights[keep]
        if not len(items):
            return []
        cosine = self.item_scores(index)[items]
        contribution = cosine * weights
        reasons: list[str] = []
        own_authors = {a.casefold(): a for a in author_names(catalog, index)}
        own_series = _series_of(catalog, index)
        order = np.lexsort((items, -contribution))[:2]
        for j in order:
            # a liked book is a reason if it really resembles this one (not just a common
            # tag) and weighs at least half as much as the best reason
            if cosine[j] < MIN_REASON_COSINE or contribution[j] < contribution[order[0]] / 2:
                break
            other = int(items[j])
            title = catalog.title_of(other)
            shared = [
                own_authors[a.casefold()]
                for a in author_names(catalog, other)
                if a.casefold() in own_authors
            ]
            reasons.append(self._reason(title, shared, own_series, _series_of(catalog, other)))
        tags = self._shared_tags(catalog, index, items)
        if tags:
            reasons.append(f"shares tags you like: {', '.join(tags)}")
        return reasons[:3]

    @staticmethod
    def _reason(title: str, shared_authors: list[str], series: str, other_series: str) -> str:
        if shared_authors:
            return f'because you liked "{title}", also by {", ".join(shared_authors[:2])}'
        if series and series.casefold() == other_series.casefold():
            return f'because you liked "{title}", also in the {series} series'
        return f'similar to "{title}", which you liked'

    def _shared_tags(self, catalog: Catalog, index: int, liked: np.ndarray) -> list[str]:
        """Up to 3 of the book's tags found on liked books, most shared and rarest first.

        Tags on more than half the catalog are left out.
        """
        own = np.unique(catalog.tags_of(index))
        if not len(own):
            return []
        counts: Counter[int] = Counter()
        for item in liked:
            counts.update(int(t) for t in np.intersect1d(own, catalog.tags_of(int(item))))
        if not counts:
            return []
        frequency = self._tag_frequencies(catalog)
        n = max(len(catalog.items), 1)
        # a tag on most books ("to-read", "favorites") explains nothing
        telling = [t for t in counts if frequency[t] <= n / 2]
        ranked = sorted(
            telling,
            key=lambda t: (-counts[t] * math.log(1 + n / max(int(frequency[t]), 1)), t),
        )
        return catalog.tag_names_of(np.asarray(ranked[:3], dtype=np.int64))

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        catalog = self.require_catalog()
        manifest = {
            "algo": self.algo,
            "params": self.config.model_dump(),
            "global_mean": None if math.isnan(self.global_mean) else self.global_mean,
            "vector_width": int(self.vectors.shape[1]),
        }
        arrays = {
            "vectors_data": self.vectors.data,
            "vectors_indices": self.vectors.indices,
            "vectors_indptr": self.vectors.indptr,
            "neighbours_data": self.neighbours.data,
            "neighbours_indices": self.neighbours.indices,
            "neighbours_indptr": self.neighbours.indptr,
            **catalog.to_arrays(),
        }
        return write_artifact(directory, manifest, arrays)

    @classmethod
    def load(cls, directory: Path) -> ContentRecommender:
        manifest, arrays = read_artifact(directory)
        model = cls(ContentConfig(**manifest["params"]))
        catalog = Catalog.from_arrays(arrays)
        n = len(catalog.items)
        model.vectors = sp.csr_matrix(
            (arrays["vectors_data"], arrays["vectors_indices"], arrays["vectors_indptr"]),
            shape=(n, int(manifest["vector_width"])),
        )
        model.neighbours = sp.csr_matrix(
            (arrays["neighbours_data"], arrays["neighbours_indices"], arrays["neighbours_indptr"]),
            shape=(n, n),
        )
        mean = manifest.get("global_mean")
        model.global_mean = math.nan if mean is None else float(mean)
        model.catalog = catalog
        return model


def resemblances(catalog: Catalog, book_id: int, others: Sequence[int]) -> dict[int, list[str]]:
    """Why each of `others` is like `book_id`, in the catalogue's own facts: shared authors,
    the same series, shared tags (tags on more than half the catalogue left out).

    The reasons of a similar-books list: they say what the books have in common, never what
    a reader did. A book with nothing in common on record gets "similar to <title>".
    """
    rows = catalog.items.index(np.asarray([book_id, *others], dtype=np.int64))
    own, rest = int(rows[0]), rows[1:]
    if own < 0:
        return {}
    title = catalog.title_of(own)
    own_authors = {a.casefold(): a for a in author_names(catalog, own)}
    own_series = _series_of(catalog, own)
    width = int(catalog.tag_ids.max()) + 1 if len(catalog.tag_ids) else 1
    frequency = np.bincount(catalog.tag_ids, minlength=width)
    own_tags = np.unique(catalog.tags_of(own))
    own_tags = own_tags[frequency[own_tags] <= len(catalog.items) / 2]
    reasons: dict[int, list[str]] = {}
    for other_id, row in zip(others, rest, strict=True):
        if row < 0:
            continue
        found: list[str] = []
        shared = [
            own_authors[a.casefold()]
            for a in author_names(catalog, int(row))
            if a.casefold() in own_authors
        ]
        if shared:
            found.append(f"also by {', '.join(shared[:2])}")
        if own_series and own_series.casefold() == _series_of(catalog, int(row)).casefold():
            found.append(f"also in the {own_series} series")
        common = np.intersect1d(own_tags, catalog.tags_of(int(row)))
        if len(common):
            rarest = common[np.argsort(frequency[common], kind="stable")][:3]
            found.append(f"shares tags: {', '.join(catalog.tag_names_of(rarest))}")
        reasons[int(other_id)] = found or [f'similar to "{title}"']
    return reasons
