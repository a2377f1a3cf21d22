"""Train/test splits of interactions, seeded and vectorised.

Every split returns `(train, test)` over the *same* IdMaps as its input, so item and user
indices mean the same thing on both sides. Per-user splits hold out a share of each reader's
ratings (readers with fewer than `min_ratings` stay whole in train), as the reference protocol
(`refeval.py`) does; `global_temporal` cuts the whole data set at one moment in time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bookrec.recsys.data import Interactions

__all__ = [
    "global_temporal",
    "leave_last_out",
    "random_holdout",
    "sampled_holdout",
    "subset",
    "temporal",
]


def subset(interactions: Interactions, mask: np.ndarray) -> Interactions:
    """The rows of `interactions` where `mask` is true, over the same IdMaps."""
    return replace(
        interactions,
        user_index=interactions.user_index[mask],
        item_index=interactions.item_index[mask],
        rating=interactions.rating[mask],
        timestamp=None if interactions.timestamp is None else interactions.timestamp[mask],
    )


def _split(interactions: Interactions, test_mask: np.ndarray) -> tuple[Interactions, Interactions]:
    return subset(interactions, ~test_mask), subset(interactions, test_mask)


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")


def _require_timestamps(interactions: Interactions, split: str) -> np.ndarray:
    if interactions.timestamp is None or len(interactions.timestamp) != len(interactions):
        raise ValueError(
            f"the {split} split needs timestamps, and these interactions have none; "
            "use random_holdout instead"
        )
    return interactions.timestamp


def _per_user_holdout(
    interactions: Interactions, order_key: np.ndarray, fraction: float, min_ratings: int
) -> np.ndarray:
    """Test mask holding out, per user, the round(n * fraction) rows with the *largest* key.

    Rows are ranked within their user by `order_key` (ties by row position); a user with fewer
    than `min_ratings` rows keeps them all in train. Rounding is half-to-even, like pandas.
    """
    n_rows = len(interactions)
    if n_rows == 0:
        return np.zeros(0, dtype=bool)
    users = interactions.user_index.astype(np.int64)
    order = np.lexsort((np.arange(n_rows), order_key, users))
    counts = np.bincount(users, minlength=len(interactions.users))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_users = users[order]
    rank = np.arange(n_rows) - starts[sorted_users]  # 0 = smallest key within the user
    count = counts[sorted_users]
    n_test = np.round(count * fraction).astype(np.int64)
    from_end = count - 1 - rank
    test_sorted = (from_end < n_test) & (count >= min_ratings)
    test_mask = np.zeros(n_rows, dtype=bool)
    test_mask[order] = test_sorted
    return test_mask


def random_holdout(
    interactions: Interactions, fraction: float = 0.2, seed: int = 7, min_ratings: int = 5
) -> tuple[Interactions, Interactions]:
    """Hold out a random `fraction` of each reader's ratings (readers with >= `min_ratings`).

    The reference protocol: per reader, round(n * fraction) ratings chosen uniformly at random
    with a generator seeded by `seed`, so the same seed gives the same split.
    """
    _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    keys = rng.random(len(interactions))
    return _split(interactions, _per_user_holdout(interactions, keys, fraction, min_ratings))


def sampled_holdout(
    interactions: Interactions,
    readers: int,
    fraction: float = 0.2,
    seed: int = 7,
    min_ratings: int = 5,
) -> tuple[Interactions, Interactions]:
    """Hold out a random `fraction` of the ratings of up to `readers` sampled readers.

    Readers are drawn uniformly (seeded) among those with >= `min_ratings` ratings; everyone
    else stays whole in train. Cheap at any scale: only the sampled readers' rows are ranked.
    The same seed over the same rows in the same order gives the same split.
    """
    _check_fraction(fraction)
    if readers < 0:
        raise ValueError(f"readers must be >= 0, got {readers}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(interactions.user_index, minlength=len(interactions.users))
    eligible = np.flatnonzero(counts >= max(min_ratings, 1))
    chosen = np.zeros(len(interactions.users), dtype=bool)
    if len(eligible):
        chosen[rng.choice(eligible, size=min(readers, len(eligible)), replace=False)] = True
    rows = np.flatnonzero(chosen[interactions.user_index])
    keys = rng.random(len(rows))
    held = _per_user_holdout(subset(interactions, rows), keys, fraction, min_ratings)
    test_mask = np.zeros(len(interactions), dtype=bool)
    test_mask[rows[held]] = True
    return _split(interactions, test_mask)


def temporal(
    interactions: Interactions, fraction: float = 0.2, min_ratings: int = 5
) -> tuple[Interactions, Interactions]:
    """Hold out each reader's latest `fraction` of ratings (readers with >= `min_ratings`).

    Ratings with equal timestamps keep their row order; later rows count as later.
    Raises ValueError when the interactions carry no timestamps.
    """
    _check_fraction(fraction)
    timestamps = _require_timestamps(interactions, "temporal")
    return _split(interactions, _per_user_holdout(interactions, timestamps, fraction, min_ratings))


def leave_last_out(
    interactions: Interactions, min_ratings: int = 2
) -> tuple[Interactions, Interactions]:
    """Hold out each reader's single latest rating (readers with >= `min_ratings`).

    Raises ValueError when the interactions carry no timestamps.
    """
    timestamps = _require_timestamps(interactions, "leave-last-out")
    n_rows = len(interactions)
    if n_rows == 0:
        return _split(interactions, np.zeros(0, dtype=bool))
    users = interactions.user_index.astype(np.int64)
    order = np.lexsort((np.arange(n_rows), timestamps, users))
    sorted_users = users[order]
    last = np.ones(n_rows, dtype=bool)
    last[:-1] = sorted_users[1:] != sorted_users[:-1]
    counts = np.bincount(users, minlength=len(interactions.users))
    test_sorted = last & (counts[sorted_users] >= min_ratings)
    test_mask = np.zeros(n_rows, dtype=bool)
    test_mask[order] = test_sorted
    return _split(interactions, test_mask)


def global_temporal(
    interactions: Interactions, fraction: float = 0.2
) -> tuple[Interactions, Interactions]:
    """Cut the data set at one moment: ratings at or after the cut are the test set.

    The cut is the timestamp of the rating at position n - round(n * fraction) in time order,
    so at least that many ratings are held out (all ratings sharing the cut time go to test).
    Readers in test may have no training history: that is the cold-start part of this split.
    Raises ValueError when the interactions carry no timestamps.
    """
    _check_fraction(fraction)
    timestamps = _require_timestamps(interactions, "global temporal")
    n_rows = len(interactions)
    n_test = round(n_rows * fraction)
    if n_test == 0:
        return _split(interactions, np.zeros(n_rows, dtype=bool))
    cut = np.sort(timestamps)[n_rows - n_test]
    return _split(interactions, timestamps >= cut)
