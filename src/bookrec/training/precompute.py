"""Every reader's list, computed by the new model at training time (the `lists/` artifact).

A worker answering for a reader whose activity has not changed since training sends this
list instead of scoring the catalogue. "Not changed" means the same activity version
(`readers.activity_version`, moved by every change of a reader's ratings or shelf). The
versions are read *before* the ratings the model learns from, so a write that lands in
between leaves an older version next to a newer list, and that reader is scored live.
The lists are scored by `serving.service.score_readers`, the bulk form of the one-reader path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Connection

from bookrec.readers import repository as readers
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.data import Interactions
from bookrec.serving.precomputed import PrecomputedLists
from bookrec.serving.service import score_readers


def activity_versions(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(reader ids, sorted; their activity versions), to be read before the ratings."""
    return readers.all_activity_versions(connection)


def write_lists(
    directory: Path,
    model: ScoringRecommender,
    ratings: Interactions,
    connection: Connection,
    versions: tuple[np.ndarray, np.ndarray],
    k: int,
) -> None:
    """Each reader's top `k` (their shelf left out) as an artifact next to the model.

    Readers with neither ratings nor a shelf get the cold-start list, which is scored live
    (and cached) like any list: they are not stored.
    """
    shelves = readers.all_shelves(connection)
    reader_ids, activity = versions
    active = np.isin(reader_ids, ratings.users.ids) | np.isin(reader_ids, shelves[0])
    reader_ids, activity = reader_ids[active], activity[active]
    book_ids, scores = score_readers(model, ratings, reader_ids, k, shelves)
    PrecomputedLists(reader_ids, activity, book_ids, scores).save(directory)
