"""Books the served model has not seen yet (added since it was trained), made similar at once.

Each book becomes a TF-IDF vector over whole author names and the series (weight 2), tag
names (1.5) and title words (0.5), with idf from the model's catalogue; cosine between two
vectors is their similarity. The index over the model's catalogue is built once per loaded
model (a few hundred ms at goodbooks scale, no scikit-learn); a new book's vector is one
row computed from its text. The next training includes the book properly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import Recommendation, top_k
from bookrec.recsys.data import Catalog

# title words are the noisiest signal of a single new book: its tags and people count more
WEIGHTS = {"a": 2.0, "s": 2.0, "t": 1.5, "w": 0.5}
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "vol",
        "volume",
        "book",
        "part",
    ]
)


@dataclass(frozen=True)
class BookText:
    """What a book says about itself, as the catalogue holds it."""

    title: str
    authors: Sequence[str]
    series: str = ""
    tags: Sequence[str] = ()

    def tokens(self) -> set[str]:
        words = {w for w in _WORD.findall(self.title.casefold()) if w not in _STOP}
        return (
            {f"w:{w}" for w in words if not w.isdigit()}
            | {f"a:{a.casefold().strip()}" for a in self.authors if a.strip()}
            | ({f"s:{self.series.casefold().strip()}"} if self.series.strip() else set())
            | {f"t:{t.casefold().strip()}" for t in self.tags if t.strip()}
        )


def texts_of(catalog: Catalog) -> list[BookText]:
    """Every catalogue book's text (authors from the author string, tags by name)."""
    n = len(catalog.items)
    names = (
        {
            int(t): str(name)
            for t, name in zip(catalog.tag_vocab_ids, catalog.tag_vocab_names, strict=True)
        }
        if catalog.tag_vocab_ids is not None and catalog.tag_vocab_names is not None
        else {}
    )
    texts = []
    for index in range(n):
        authors = str(catalog.authors[index]) if catalog.authors is not None else ""
        texts.append(
            BookText(
                title=catalog.title_of(index) if catalog.title is not None else "",
                authors=[a for a in authors.split(",") if a.strip()],
                series="" if catalog.series is None else str(catalog.series[index]),
                tags=[names.get(int(t), "") for t in catalog.tags_of(index)],
            )
        )
    return texts


class ColdStartIndex:
    """TF-IDF vectors of a catalogue's books, and of books added after it."""

    def __init__(self, catalog: Catalog) -> None:
        self.ids = catalog.items.ids
        documents = [text.tokens() for text in texts_of(catalog)]
        self.vocabulary: dict[str, int] = {}
        for tokens in documents:
            for token in tokens:
                self.vocabulary.setdefault(token, len(self.vocabulary))
        frequency = np.zeros(len(self.vocabulary), dtype=np.float64)
        for tokens in documents:
            for token in tokens:
                frequency[self.vocabulary[token]] += 1
        n = len(documents)
        self.idf = (np.log((1 + n) / (1 + frequency)) + 1).astype(np.float32)
        self.vectors = self._matrix(documents)

    def _matrix(self, documents: Iterable[set[str]]) -> sp.csr_matrix:
        indptr: list[int] = [0]
        indices: list[int] = []
        data: list[float] = []
        for tokens in documents:
            known = sorted(
                (self.vocabulary[t], WEIGHTS[t[0]]) for t in tokens if t in self.vocabulary
            )
            values = [float(self.idf[i]) * weight for i, weight in known]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            indices.extend(i for i, _ in known)
            data.extend(v / norm for v in values)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), indices, indptr),
            shape=(len(indptr) - 1, len(self.vocabulary)),
        )

    def vectorise(self, texts: Sequence[BookText]) -> sp.csr_matrix:
        """Vectors of books outside the catalogue (tokens it has never seen count nothing)."""
        return self._matrix(text.tokens() for text in texts)

    def similar(
        self,
        vector: sp.csr_matrix,
        k: int,
        allowed: np.ndarray | None = None,
        others: tuple[np.ndarray, sp.csr_matrix] | None = None,
        exclude: int | None = None,
    ) -> list[Recommendation]:
        """The k catalogue books (and `others`: ids and vectors of added books) most like
        `vector`, by cosine; nothing in common is not similar."""
        scores = np.asarray((self.vectors @ vector.T).toarray(), dtype=np.float64).ravel()
        ids = self.ids
        if allowed is not None:
            scores[~allowed] = -np.inf
        if others is not None and len(others[0]):
            extra = np.asarray((others[1] @ vector.T).toarray(), dtype=np.float64).ravel()
            scores = np.concatenate([scores, extra])
            ids = np.concatenate([ids, others[0]])
        if exclude is not None:
            scores[ids == exclude] = -np.inf
        scores[scores <= 1e-6] = -np.inf
        best = top_k(scores, k)
        return [Recommendation(int(ids[i]), float(scores[i])) for i in best]
