"""Splits: seeded, disjoint, the right sizes, and time-ordered where they promise to be."""

from __future__ import annotations

import numpy as np
import pytest

from bookrec.recsys.data import Interactions
from bookrec.recsys.splits import global_temporal, leave_last_out, random_holdout, temporal


def interactions(with_time: bool = True, seed: int = 3) -> Interactions:
    """60 readers (ids 1000, 1007, ...) with 1..30 distinct books each, random timestamps."""
    rng = np.random.default_rng(seed)
    users, books = [], []
    for reader in range(60):
        count = 1 + reader % 30
        users += [1000 + 7 * reader] * count
        books += rng.choice(np.arange(1, 400) * 3, size=count, replace=False).tolist()
    n = len(users)
    order = rng.permutation(n)  # rows not grouped by user
    return Interactions.from_ids(
        np.array(users)[order],
        np.array(books)[order],
        rng.integers(1, 6, size=n),
        rng.permutation(n) * 60 + 1_500_000_000 if with_time else None,
    )


def pairs(part: Interactions) -> set[tuple[int, int]]:
    return set(zip(part.user_index.tolist(), part.item_index.tolist(), strict=True))


def per_user(part: Interactions, n_users: int) -> np.ndarray:
    return np.bincount(part.user_index, minlength=n_users)


def check_partition(data: Interactions, train: Interactions, test: Interactions) -> None:
    assert train.users is data.users
    assert train.items is data.items
    assert test.users is data.users
    assert len(train) + len(test) == len(data)
    assert not pairs(train) & pairs(test)
    assert pairs(train) | pairs(test) == pairs(data)


def test_random_holdout_is_seeded_disjoint_and_sized_per_user() -> None:
    data = interactions()
    train, test = random_holdout(data, fraction=0.2, seed=11)
    check_partition(data, train, test)
    counts = per_user(data, len(data.users))
    # round-half-to-even like pandas: a reader with 10 ratings gives 2, one with 5 gives 1
    expected = np.where(counts >= 5, np.round(counts * 0.2), 0)
    assert per_user(test, len(data.users)).tolist() == expected.tolist()
    again_train, again_test = random_holdout(data, fraction=0.2, seed=11)
    assert pairs(again_test) == pairs(test)
    assert pairs(again_train) == pairs(train)
    _, other = random_holdout(data, fraction=0.2, seed=12)
    assert pairs(other) != pairs(test)


def test_random_holdout_min_ratings_and_fraction() -> None:
    data = interactions()
    counts = per_user(data, len(data.users))
    _, test = random_holdout(data, fraction=0.5, seed=1, min_ratings=20)
    held = per_user(test, len(data.users))
    assert (held[counts < 20] == 0).all()
    assert held[counts >= 20].tolist() == np.round(counts[counts >= 20] * 0.5).tolist()
    with pytest.raises(ValueError, match="fraction"):
        random_holdout(data, fraction=1.5)


def test_random_holdout_works_without_timestamps() -> None:
    data = interactions(with_time=False)
    train, test = random_holdout(data, seed=5)
    check_partition(data, train, test)
    assert train.timestamp is None
    assert test.timestamp is None


def test_temporal_holds_out_each_readers_latest() -> None:
    data = interactions()
    train, test = temporal(data, fraction=0.25)
    check_partition(data, train, test)
    counts = per_user(data, len(data.users))
    expected = np.where(counts >= 5, np.round(counts * 0.25), 0)
    assert per_user(test, len(data.users)).tolist() == expected.tolist()
    assert train.timestamp is not None
    assert test.timestamp is not None
    for user in np.unique(test.user_index):
        # every held-out rating is newer than every rating the reader keeps in train
        assert test.timestamp[test.user_index == user].min() > (
            train.timestamp[train.user_index == user].max()
        )


def test_temporal_ties_keep_row_order() -> None:
    # one reader, five ratings at the same moment: the last rows count as the latest
    data = Interactions.from_ids(
        np.array([1] * 5), np.array([10, 20, 30, 40, 50]), np.ones(5), np.zeros(5)
    )
    _, test = temporal(data, fraction=0.4)
    assert sorted(data.items.ids[test.item_index].tolist()) == [40, 50]


def test_time_based_splits_need_timestamps() -> None:
    data = interactions(with_time=False)
    for split in (temporal, leave_last_out, global_temporal):
        with pytest.raises(ValueError, match="timestamps"):
            split(data)


def test_leave_last_out() -> None:
    data = interactions()
    train, test = leave_last_out(data)
    check_partition(data, train, test)
    counts = per_user(data, len(data.users))
    assert per_user(test, len(data.users)).tolist() == (counts >= 2).astype(int).tolist()
    assert data.timestamp is not None
    assert test.timestamp is not None
    for user, time in zip(test.user_index, test.timestamp, strict=True):
        assert time == data.timestamp[data.user_index == user].max()


def test_global_temporal_cuts_at_one_moment() -> None:
    data = interactions()
    train, test = global_temporal(data, fraction=0.2)
    check_partition(data, train, test)
    assert len(test) == round(len(data) * 0.2)  # timestamps are distinct
    assert train.timestamp is not None
    assert test.timestamp is not None
    assert train.timestamp.max() < test.timestamp.min()
    empty_train, everything = global_temporal(data, fraction=1.0)
    assert len(empty_train) == 0
    assert len(everything) == len(data)
    assert len(global_temporal(data, fraction=0.0)[1]) == 0


def test_empty_interactions() -> None:
    data = Interactions.from_ids(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    )
    assert len(random_holdout(data)[1]) == 0
    assert len(leave_last_out(data)[1]) == 0
