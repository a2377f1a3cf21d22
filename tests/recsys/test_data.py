"""IdMap.index: the table lookup for large queries answers exactly as the binary search."""

from __future__ import annotations

import numpy as np
import pytest

from bookrec.recsys import data
from bookrec.recsys.data import IdMap


def _searched(map_: IdMap, ids: np.ndarray) -> np.ndarray:
    position = np.minimum(np.searchsorted(map_.ids, ids), len(map_.ids) - 1)
    return np.where(map_.ids[position] == ids, position, -1)


@pytest.mark.parametrize(
    "ids",
    [
        np.arange(1, 10_001),  # goodbooks' book ids
        np.random.default_rng(1).choice(80_000, 5_000, replace=False),  # gaps
        np.array([-7, -1, 0, 3, 9]),  # negative ids: no table
        np.array([1, 2**40]),  # too wide for a table
        np.array([5]),
    ],
)
def test_large_queries_match_the_binary_search(ids: np.ndarray) -> None:
    map_ = IdMap.of(ids)
    rng = np.random.default_rng(2)
    queries = np.concatenate(
        [
            rng.choice(ids, 3 * data.DENSE_LOOKUP_MIN_QUERIES),
            rng.integers(int(ids.min()) - 10, int(ids.max()) + 10, data.DENSE_LOOKUP_MIN_QUERIES),
            np.array([-(2**62), 2**62, int(ids.max()) + 1]),
        ]
    )
    assert np.array_equal(map_.index(queries), _searched(map_, queries))
    assert np.array_equal(map_.index(queries[:10]), _searched(map_, queries[:10]))
    assert map_.index(queries).dtype == np.int64


def test_tables_are_built_only_for_small_non_negative_ids() -> None:
    assert IdMap.of(np.arange(1, 10_001))._dense is not None
    assert IdMap.of([-1, 5])._dense is None
    assert IdMap.of([1, 10**9])._dense is None
    assert np.array_equal(IdMap.of([]).index(np.arange(5000)), np.full(5000, -1))
