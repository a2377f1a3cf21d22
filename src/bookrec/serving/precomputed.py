"""The lists a version computed at training time, looked up by reader and activity stamp."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bookrec.recsys.artifacts import ArtifactError, read_artifact
from bookrec.recsys.base import Recommendation


@dataclass(frozen=True)
class PrecomputedLists:
    reader_ids: np.ndarray  # int64, sorted
    stamps: np.ndarray  # int64, readers x 6
    book_ids: np.ndarray  # int64, readers x k; -1 pads
    scores: np.ndarray  # float32, readers x k

    @classmethod
    def load(cls, directory: Path) -> PrecomputedLists:
        _, arrays = read_artifact(directory)
        # plain ndarray views of the memory maps: indexing np.memmap costs ~10 µs a call
        plain = {name: array.view(np.ndarray) for name, array in arrays.items()}
        try:
            lists = cls(plain["reader_ids"], plain["stamps"], plain["book_ids"], plain["scores"])
        except KeyError as exc:
            raise ArtifactError(f"{directory}: no {exc} array") from None
        if not len(lists.reader_ids) == len(lists.stamps) == len(lists.book_ids):
            raise ArtifactError(f"{directory}: arrays of different lengths")
        return lists

    @property
    def k(self) -> int:
        return int(self.book_ids.shape[1])

    def lookup(self, reader_id: int, stamp: str, k: int) -> list[Recommendation] | None:
        """The reader's first `k` books if their activity is what it was at training time."""
        if k > self.k:
            return None
        row = int(self.reader_ids.searchsorted(reader_id))
        if row >= len(self.reader_ids) or self.reader_ids[row] != reader_id:
            return None
        if stamp != ":".join(map(str, self.stamps[row].tolist())):
            return None
        books, scores = self.book_ids[row, :k].tolist(), self.scores[row, :k].tolist()
        return [
            Recommendation(book, score)
            for book, score in zip(books, scores, strict=True)
            if book >= 0
        ]
