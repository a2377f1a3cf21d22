"""Which variant a reader gets: a hash of (experiment, reader) into the variants' weights.

The same reader always lands in the same variant of an experiment, in every worker and after
every restart, without storing anything; different experiments split readers independently.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from itertools import accumulate


def unit_interval(experiment_id: int, reader_id: int) -> float:
    """A uniform number in [0, 1) fixed by (experiment, reader)."""
    digest = hashlib.blake2b(f"{experiment_id}:{reader_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Cumulative shares of positive weights, the last exactly 1."""
    total = float(sum(weights))
    if not weights or total <= 0 or any(w <= 0 for w in weights):
        raise ValueError("weights must be positive")
    shares = [w / total for w in accumulate(weights)]
    shares[-1] = 1.0
    return tuple(shares)


def assign(experiment_id: int, reader_id: int, shares: Sequence[float]) -> int:
    """The index of the reader's variant, given `cumulative` shares."""
    return bisect.bisect_right(shares, unit_interval(experiment_id, reader_id))
