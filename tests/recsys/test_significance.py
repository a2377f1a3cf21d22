"""Intervals and paired tests across splits: hand-checked cases and scipy's own test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bookrec.recsys.significance import mean_interval, paired_t_test


def test_the_interval_of_a_hand_checked_case() -> None:
    # mean 0.3, s = 0.01 (values 0.29, 0.30, 0.31), t(0.975, 2) = 4.302653
    interval = mean_interval(np.array([0.29, 0.30, 0.31]))
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert interval.mean == pytest.approx(0.30)
    assert interval.low == pytest.approx(0.30 - half, abs=1e-6)
    assert interval.high == pytest.approx(0.30 + half, abs=1e-6)
    one = mean_interval(np.array([0.25]))
    assert one.low == one.mean == one.high == 0.25


def test_the_paired_test_agrees_with_scipy() -> None:
    rng = np.random.default_rng(4)
    baseline = rng.normal(0.30, 0.01, 5)
    model = baseline + rng.normal(0.006, 0.003, 5)
    ours = paired_t_test(model, baseline)
    theirs = stats.ttest_rel(model, baseline)
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-9)
    assert ours.difference == pytest.approx(float((model - baseline).mean()))
    assert ours.relative == pytest.approx(ours.difference / baseline.mean())


def test_pairing_sees_a_small_steady_gain_that_overlapping_intervals_hide() -> None:
    baseline = np.array([0.28, 0.31, 0.30, 0.33, 0.29])  # splits differ a lot
    model = baseline * 1.03 + np.array([0.0005, -0.0004, 0.0003, -0.0002, 0.0001])
    a, b = mean_interval(model), mean_interval(baseline)
    assert a.low < b.high  # the intervals overlap
    test = paired_t_test(model, baseline)
    assert test.p_value is not None and test.p_value < 0.001
    assert test.relative == pytest.approx(0.03, abs=0.002)


def test_degenerate_cases() -> None:
    same = np.array([0.3, 0.3, 0.3])
    assert paired_t_test(same, same).p_value == 1.0
    assert paired_t_test(same + 0.01, same).p_value == 0.0
    assert paired_t_test(np.array([0.31]), np.array([0.30])).p_value is None
