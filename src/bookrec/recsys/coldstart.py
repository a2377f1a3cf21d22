"""Books the served model has not seen yet (added since it was trained), made similar at once.

Each book becomes a TF-IDF vector over whole author names and the series (weight 2), tag
names (1.5) and title words (0.5), with idf from the model's catalogue; cosine between two
vectors is their similarity. The index over the model's catalogue is built once per loaded
model (a few hundred ms at goodbooks scale, no scikit-learn); a new book's vector is one
row computed from its text. The next training includes the book properly.

Until then new books join the model's answers on the model's own scale:

* another book's similar list (`merge_similar`): the model's neighbours keep their order and
  scores; a new book is placed just before the first neighbour it beats on cosine in this
  space (both cosines measured here, to the same book) and takes that neighbour's score, so
  it enters only by beating the list's cut-off on content; at most `new_book_slots(k)` new
  books, each with a cosine of at least `MIN_SIMILAR_COSINE`;
* a reader's list (`blend_new_books`): each new book's match is its best cosine to a book the
  reader liked (rated 4★ or more, or read without a rating: `base.citable`); at most
  `new_book_slots(k)` of them, each matching with at least `MIN_TASTE_COSINE`, take the middle
  of the list with the score of the pick they displace.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import Recommendation, citable, top_k
from bookrec.recsys.data import Catalog, ReaderHistory

# title words are the noisiest signal of a single new book: its tags and people count more
WEIGHTS = {"a": 2.0, "s": 2.0, "t": 1.5, "w": 0.5}
#: The cosine a new book needs to another book to enter its similar list (one shared
#: author alone, with unrelated tags and title, gives about 0.3-0.5 at goodbooks scale).
MIN_SIMILAR_COSINE = 0.2
#: The cosine a new book needs to one book a reader liked to enter that reader's list.
MIN_TASTE_COSINE = 0.3
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
        self.tokens = list(self.vocabulary)  # column -> token ("a:name", "t:name", ...)
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

    def shared(self, first: sp.csr_matrix, second: sp.csr_matrix, kind: str) -> list[str]:
        """Tokens of one kind ("a" authors, "s" series, "t" tags, "w" title words) that two
        one-row vectors share, case-folded, in vocabulary order."""
        common = np.intersect1d(first.indices, second.indices)
        prefix = f"{kind}:"
        return [self.tokens[c][len(prefix) :] for c in common if self.tokens[c].startswith(prefix)]

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


def merge_similar(
    listed: Sequence[Recommendation],
    listed_cosines: np.ndarray,
    new_ids: np.ndarray,
    new_cosines: np.ndarray,
    k: int,
    floor: float = MIN_SIMILAR_COSINE,
) -> list[Recommendation]:
    """A model's similar list with new books merged in on its scale (see the module's doc).

    `listed_cosines` are the listed books' cosines to the query book in this space,
    `new_cosines` the new books'. Of the new books with a cosine of at least `floor`, the
    `new_book_slots(k)` closest are merged: each goes just before the first listed book it
    beats (with that book's score); one that beats none follows the list, scored like its
    last book (or by its cosine when the list is empty), so the caller's cut to k keeps it
    only when the model found fewer neighbours than asked for.
    """
    new_cosines = np.asarray(new_cosines, dtype=np.float64)
    strong = np.flatnonzero(new_cosines >= floor)
    if not len(strong):
        return list(listed)
    closest = np.lexsort((np.asarray(new_ids)[strong], -new_cosines[strong]))
    strong = strong[closest[: new_book_slots(k)]]
    cosines = new_cosines[strong]
    below = np.asarray(listed_cosines, dtype=np.float64)[None, :] < cosines[:, None]
    position = (
        np.where(below.any(axis=1), below.argmax(axis=1), len(listed))
        if len(listed)
        else np.zeros(len(cosines), dtype=np.int64)
    )
    if len(listed):
        scores = np.asarray([r.score for r in listed], dtype=np.float64)
        new_scores = scores[np.minimum(position, len(listed) - 1)]  # past the end: the last
    else:
        new_scores = cosines
    entries: list[tuple[int, int, float, int, Recommendation]] = [
        (j, 1, 0.0, 0, r) for j, r in enumerate(listed)
    ]
    for i, book in enumerate(new_ids[strong]):
        recommendation = Recommendation(int(book), float(new_scores[i]))
        entries.append((int(position[i]), 0, -float(cosines[i]), int(book), recommendation))
    entries.sort(key=lambda entry: entry[:4])
    return [entry[4] for entry in entries]


def new_book_slots(k: int) -> int:
    """How many places of a k-book list new books may take: 1, or 2 from k = 10."""
    return 1 if k < 10 else 2


@dataclass(frozen=True)
class TasteMatch:
    """A new book blended into a reader's list, and the liked book it resembles most."""

    book_id: int
    liked_book_id: int
    liked_rating: float
    cosine: float


def blend_new_books(
    picks: Sequence[Recommendation],
    k: int,
    new_ids: np.ndarray,
    new_vectors: sp.csr_matrix,
    liked: tuple[np.ndarray, sp.csr_matrix, np.ndarray],
    candidates: np.ndarray,
    floor: float = MIN_TASTE_COSINE,
) -> tuple[list[Recommendation], list[TasteMatch]]:
    """A reader's list with the new books closest to their taste in its middle.

    `liked` is (book ids, vectors, ratings) of the books the reader liked; `candidates`
    marks the new books they may be shown (not rated, not shelved). At most
    `new_book_slots(k)` new books, each with a cosine of at least `floor` to a liked book,
    go in at position k // 2 with the score of the pick they displace.
    """
    liked_ids, liked_vectors, liked_ratings = liked
    rows = np.flatnonzero(candidates)
    if not len(rows) or not len(liked_ids):
        return list(picks), []
    # sparse: only pairs sharing a token are stored, however many books are new
    cosines = sp.csr_matrix(new_vectors[rows] @ liked_vectors.T)
    best = np.asarray(cosines.max(axis=1).toarray(), dtype=np.float64).ravel()
    which = np.asarray(cosines.argmax(axis=1)).ravel()
    order = np.lexsort((new_ids[rows], -best))[: new_book_slots(k)]
    order = order[best[order] >= floor]
    if not len(order):
        return list(picks), []
    position = min(len(picks), k // 2)
    score = picks[position].score if position < len(picks) else None
    matches = [
        TasteMatch(
            int(new_ids[rows[i]]),
            int(liked_ids[which[i]]),
            float(liked_ratings[which[i]]),
            float(best[i]),
        )
        for i in order
    ]
    blended = [Recommendation(m.book_id, m.cosine if score is None else score) for m in matches]
    return [*picks[:position], *blended, *picks[position:]], matches


def liked_books(history: ReaderHistory) -> tuple[np.ndarray, np.ndarray]:
    """The book ids and ratings of a history that a reason may name (`base.citable`)."""
    keep = citable(history.ratings)
    return history.book_ids[keep], np.asarray(history.ratings)[keep]
