"""Every reader's list, computed by the new model at training time (the `lists/` artifact).

A worker answering for a reader whose activity has not changed since training can send this
list instead of scoring the catalogue. "Not changed" is decided by the activity stamp the
database computes (counts and sums over the reader's ratings and shelf; see
`interactions.repository.activity_stamp`): the stamps are read *before* the ratings the model
learns from, so a write that lands in between leaves an older stamp next to a newer list, and
that reader is scored live. A reader who rated, un-rated or shelved anything since is too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Connection, text

from bookrec.interactions import repository as interactions
from bookrec.recsys.artifacts import write_artifact
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.data import Interactions
from bookrec.serving.batch import batch_recommend

STAMP_COLUMNS = 6
_RATINGS = text(
    "SELECT reader_id, count(book_id), coalesce(sum(book_id * rating), 0), "
    "coalesce(sum(rated_at), 0) FROM ratings GROUP BY reader_id"
)
_SHELF = text(
    "SELECT reader_id, count(book_id), coalesce(sum(book_id), 0), "
    "coalesce(sum(added_at), 0) FROM shelf GROUP BY reader_id"
)


def activity_stamps(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(reader ids, sorted; their stamps, int64 n x 6) for every reader with any activity.

    The same six numbers, in the same order, as `activity_stamp` computes for one reader.
    """
    stamps: dict[int, list[int]] = {}
    for offset, statement in ((0, _RATINGS), (3, _SHELF)):
        for reader_id, *values in connection.execute(statement):
            row = stamps.setdefault(int(reader_id), [0] * STAMP_COLUMNS)
            row[offset : offset + 3] = [int(v) for v in values]
    reader_ids = np.asarray(sorted(stamps), dtype=np.int64)
    table = np.asarray([stamps[r] for r in reader_ids.tolist()], dtype=np.int64)
    return reader_ids, table.reshape(-1, STAMP_COLUMNS)


def write_lists(
    directory: Path,
    model: ScoringRecommender,
    ratings: Interactions,
    connection: Connection,
    reader_ids: np.ndarray,
    stamps: np.ndarray,
    k: int,
) -> None:
    """Each reader's top `k` (their shelf left out) as an artifact next to the model."""
    shelf = interactions.all_shelves(connection)
    book_ids, scores = batch_recommend(model, ratings, reader_ids, k, shelf)
    write_artifact(
        directory,
        {"kind": "lists", "k": k, "readers": len(reader_ids)},
        {
            "reader_ids": reader_ids,
            "stamps": stamps,
            "book_ids": book_ids.astype(np.int64),
            "scores": scores.astype(np.float32),
        },
    )
