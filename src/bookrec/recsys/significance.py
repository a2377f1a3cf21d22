"""Telling a gain from noise across repeated evaluation splits.

Each seeded split gives one value of a metric per model. Over N splits:

- the mean and its 95 % confidence interval, mean ± t(0.975, N−1) · s / √N (Student's t,
  s the sample standard deviation across splits);
- a paired t-test of a model against a baseline on the same splits: the differences
  d_i = model_i − baseline_i, t = mean(d) / (s_d / √N), two-sided p-value with N−1 degrees
  of freedom. Pairing removes what the splits share (an easy split is easy for both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with the bounds of its confidence interval (both the mean with one split)."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedTest:
    """Model minus baseline over the same splits: mean difference, relative to the
    baseline's mean, and the two-sided p-value (None with fewer than two splits)."""

    difference: float
    relative: float
    p_value: float | None


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> Interval:
    """The mean of `values` (one per split) and its Student-t confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, mean, mean)
    half = float(
        stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
        * values.std(ddof=1)
        / math.sqrt(len(values))
    )
    return Interval(mean, mean - half, mean + half)


def paired_t_test(values: np.ndarray, baseline: np.ndarray) -> PairedTest:
    """Paired two-sided t-test of `values` against `baseline` (aligned by split)."""
    values = np.asarray(values, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    differences = values - baseline
    difference = float(differences.mean())
    base = float(baseline.mean())
    relative = difference / base if base else math.nan
    if len(differences) < 2:
        return PairedTest(difference, relative, None)
    spread = float(differences.std(ddof=1))
    if spread == 0.0:  # identical on every split, or the same gain on every split
        return PairedTest(difference, relative, 1.0 if difference == 0.0 else 0.0)
    t = difference / (spread / math.sqrt(len(differences)))
    p_value = float(2 * stats.t.sf(abs(t), len(differences) - 1))
    return PairedTest(difference, relative, p_value)
