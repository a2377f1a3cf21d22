"""The lists a version computed at training time, looked up by reader and activity version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bookrec.recsys.artifacts import (
    ArtifactError,
    read_artifact,
    read_manifest,
    sha256_of,
    write_artifact,
    write_manifest,
)
from bookrec.recsys.base import Recommendation

KIND = "lists"
#: The layout this code reads and writes; versions trained before it carry none it can use.
LAYOUT = 2


@dataclass(frozen=True)
class PrecomputedLists:
    reader_ids: np.ndarray  # int64, sorted
    activity_versions: np.ndarray  # int64, each reader's activity version as training read it
    book_ids: np.ndarray  # int64, readers x k; -1 pads
    scores: np.ndarray  # float32, readers x k

    def save(self, directory: Path) -> None:
        write_artifact(
            directory,
            {"kind": KIND, "layout": LAYOUT, "k": self.k, "readers": len(self.reader_ids)},
            {
                "reader_ids": self.reader_ids.astype(np.int64),
                "activity_versions": self.activity_versions.astype(np.int64),
                "book_ids": self.book_ids.astype(np.int64),
                "scores": self.scores.astype(np.float32),
            },
        )

    @classmethod
    def load(cls, directory: Path) -> PrecomputedLists | None:
        """The lists in `directory`; None when they are of an older layout (they predate
        activity versions: every reader of that version is then scored live)."""
        manifest, arrays = read_artifact(directory)
        if manifest.get("layout") != LAYOUT:
            return None
        # plain ndarray views of the memory maps: indexing np.memmap costs ~10 µs a call
        plain = {name: array.view(np.ndarray) for name, array in arrays.items()}
        try:
            lists = cls(
                plain["reader_ids"],
                plain["activity_versions"],
                plain["book_ids"],
                plain["scores"],
            )
        except KeyError as exc:
            raise ArtifactError(f"{directory}: no {exc} array") from None
        if not len(lists.reader_ids) == len(lists.activity_versions) == len(lists.book_ids):
            raise ArtifactError(f"{directory}: arrays of different lengths")
        return lists

    @property
    def k(self) -> int:
        return int(self.book_ids.shape[1])

    def lookup(self, reader_id: int, activity_version: int, k: int) -> list[Recommendation] | None:
        """The reader's first `k` books if their activity is what it was at training time."""
        if k > self.k:
            return None
        row = int(self.reader_ids.searchsorted(reader_id))
        if row >= len(self.reader_ids) or self.reader_ids[row] != reader_id:
            return None
        if self.activity_versions[row] != activity_version:
            return None
        books, scores = self.book_ids[row, :k].tolist(), self.scores[row, :k].tolist()
        return [
            Recommendation(book, score)
            for book, score in zip(books, scores, strict=True)
            if book >= 0
        ]


#: The activity version a wiped row carries: never a reader's (theirs are >= 0).
WIPED = -1


def wipe_reader(directory: Path, reader_id: int) -> bool:
    """Wipe one reader's row from the lists in `directory`, in place: their books, scores and
    activity version are overwritten (the bare internal id stays, naming nobody once the
    reader row is gone; ids are never reused). Every worker memory-maps these files shared,
    so none can serve the row from now on. The manifest's checksums are rewritten to match.
    Returns whether the reader had a row."""
    manifest = read_manifest(directory)
    if manifest.get("layout") != LAYOUT:
        return False  # an older layout, never served (see `load`); the version's pruning ends it
    reader_ids = np.load(directory / "reader_ids.npy", mmap_mode="r", allow_pickle=False)
    row = int(reader_ids.searchsorted(reader_id))
    if row >= len(reader_ids) or int(reader_ids[row]) != reader_id:
        return False
    for name, wiped in (("activity_versions", WIPED), ("book_ids", -1), ("scores", 0.0)):
        array = np.load(directory / f"{name}.npy", mmap_mode="r+", allow_pickle=False)
        array[row] = wiped
        array.flush()
        manifest["files"][f"{name}.npy"] = sha256_of(directory / f"{name}.npy")
        del array
    write_manifest(directory, manifest)
    return True
