"""SQLite's packed rows: each column less its smallest value, side by side in one integer,
unpacked by shift, mask and that smallest value (as the packed statement does in SQL)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import numpy as np

from bookrec.importing.bulk import _has_json_each, _has_repeated_pair, _packed_rows


def unpacked(packed: tuple[object, ...]) -> list[np.ndarray]:
    text, *unpack = packed
    assert isinstance(text, str)
    values = np.asarray(json.loads(text), dtype=np.int64)
    return [
        ((values >> shift) & mask) + low
        for shift, mask, low in zip(unpack[::3], unpack[1::3], unpack[2::3], strict=True)
    ]


def test_packed_rows_unpack_to_the_columns() -> None:
    rng = np.random.default_rng(3)
    columns = [
        rng.integers(1, 2**14, 500),
        rng.integers(2**31 - 2**14, 2**31, 500),  # wide ids, a narrow range
        rng.integers(1, 6, 500),
        rng.integers(1_400_000_000, 1_400_000_000 + 2**26, 500),  # timestamps of two years
        np.full(500, 7),  # one value: no bits at all
        rng.integers(-10, 10, 500),
    ]
    packed = _packed_rows(columns)
    assert packed is not None
    for got, column in zip(unpacked(packed), columns, strict=True):
        np.testing.assert_array_equal(got, column)


def test_rows_that_do_not_fit_63_bits_are_not_packed() -> None:
    # ranges of 2^40, 2^20 and 4 need 41 + 21 + 3 = 65 bits; 40 + 20 + 3 = 63 fit
    assert (
        _packed_rows([np.asarray([0, 2**40]), np.asarray([3, 3 + 2**20]), np.asarray([1, 5])])
        is None
    )
    fits = [np.asarray([0, 2**40 - 1]), np.asarray([3, 2**20 + 2]), np.asarray([1, 5])]
    assert _packed_rows(fits) is not None
    for got, column in zip(unpacked(_packed_rows(fits) or ()), fits, strict=True):
        np.testing.assert_array_equal(got, column)
    assert _packed_rows([np.zeros(0, np.int64), np.zeros(0, np.int64)]) is None


def test_the_json_probe_finds_json_each_in_this_sqlite() -> None:
    """The probe's query must hold on an SQLite with JSON functions, or every import would
    quietly take the slow path (they are built in since 3.38; this Python's is newer)."""
    assert sqlite3.sqlite_version_info >= (3, 38)
    with closing(sqlite3.connect(":memory:")) as connection:
        assert _has_json_each(connection.cursor())


def test_a_pair_repeated_within_or_across_blocks_is_found() -> None:
    def keys(*values: int) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    assert not _has_repeated_pair([])
    assert not _has_repeated_pair([keys(1, 5, 9), keys(2, 3), keys()])
    assert _has_repeated_pair([keys(1, 5, 5, 9)])
    assert _has_repeated_pair([keys(1, 5, 9), keys(0, 9)])
    assert _has_repeated_pair([keys(2**40 + 3), keys(7), keys(2**40 + 3)])
