"""The experiment statistics: hand-checked cases, cross-checks against scipy, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bookrec.experiments.assignment import assign, cumulative
from bookrec.experiments.statistics import (
    ArmData,
    analyse,
    compare,
    ratio_and_variance,
    summarise,
    wilson,
)


def simulate(
    rng: np.random.Generator, readers: int, ctr: float, spread: float = 20.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-reader impressions and clicks: readers differ in how much they click (beta with
    mean `ctr`), so a reader's clicks go together, as they do in real lists."""
    impressions = rng.integers(5, 30, size=readers)
    rates = rng.beta(ctr * spread, (1 - ctr) * spread, size=readers)
    return impressions, rng.binomial(impressions, rates)


def test_wilson_matches_scipy_for_whole_counts() -> None:
    for clicks, impressions in [(0, 10), (3, 10), (50, 1000), (999, 1000)]:
        expected = stats.binomtest(clicks, impressions).proportion_ci(method="wilson")
        low, high = wilson(clicks / impressions, impressions)
        assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_ratio_variance_by_hand() -> None:
    # three readers: (impressions, clicks) = (2, 1), (4, 1), (6, 3); CTR = 5/12
    impressions, clicks = np.array([2.0, 4.0, 6.0]), np.array([1.0, 1.0, 3.0])
    ratio, variance = ratio_and_variance(impressions, clicks)
    assert ratio == pytest.approx(5 / 12)
    # delta method: (var_c - 2 r cov + r^2 var_n) / (m * mean_n^2), sample moments
    var_n, var_c, cov = 4.0, 4 / 3, 2.0
    r = 5 / 12
    assert variance == pytest.approx((var_c - 2 * r * cov + r * r * var_n) / (3 * 16))


def test_with_one_click_per_reader_and_equal_exposure_the_test_is_the_plain_binomial_one() -> None:
    """Readers each shown one book: clustering changes nothing, so the z-test must agree with
    the textbook two-proportion test (unpooled)."""
    rng = np.random.default_rng(1)
    a = rng.binomial(1, 0.10, size=4000)
    b = rng.binomial(1, 0.12, size=4000)
    ones = np.ones(4000)
    result = compare(ArmData.of("a", 1, ones, a), ArmData.of("b", 1, ones, b), 0.05)
    pa, pb = a.mean(), b.mean()
    se = math.sqrt(pa * (1 - pa) / 3999 + pb * (1 - pb) / 3999)  # sample variances (ddof=1)
    z = (pb - pa) / se
    assert result.z == pytest.approx(z, rel=1e-6)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)


def test_assignment_is_sticky_and_balanced_over_ten_thousand_readers() -> None:
    shares = cumulative([1, 1])
    first = [assign(7, reader, shares) for reader in range(1, 10_001)]
    again = [assign(7, reader, shares) for reader in range(1, 10_001)]
    assert first == again
    in_b = sum(first)
    # within 3 standard deviations of 5,000 (sd = 50)
    assert abs(in_b - 5000) < 150, in_b
    # weights 1:3 give a quarter, and a different experiment splits readers independently
    quarter = [assign(7, reader, cumulative([1, 3])) for reader in range(1, 10_001)]
    assert abs(quarter.count(0) - 2500) < 3 * math.sqrt(10_000 * 0.25 * 0.75)
    other = [assign(8, reader, shares) for reader in range(1, 10_001)]
    agree = sum(x == y for x, y in zip(first, other, strict=True))
    assert abs(agree - 5000) < 150


def test_an_aa_comparison_is_significant_in_about_five_percent_of_runs() -> None:
    """Calibration: 200 seeded A/A experiments of 300 readers a side, readers of differing
    click rates. A test that ignored the clustering would reject far more often (checked
    below), which is why the readers are the unit."""
    rng = np.random.default_rng(2026)
    clustered = naive = 0
    for _ in range(200):
        a = ArmData.of("a", 1, *simulate(rng, 300, 0.08))
        b = ArmData.of("b", 1, *simulate(rng, 300, 0.08))
        clustered += compare(a, b, 0.05).significant
        n_a, n_b = a.impressions.sum(), b.impressions.sum()
        pooled = (a.clicks.sum() + b.clicks.sum()) / (n_a + n_b)
        z = (b.clicks.sum() / n_b - a.clicks.sum() / n_a) / math.sqrt(
            pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
        )
        naive += 2 * stats.norm.sf(abs(z)) < 0.05
    assert 2 <= clustered <= 20, clustered  # 5 % of 200 = 10; binomial 99 % range
    assert naive > clustered


def test_five_versus_ten_percent_over_300_readers_a_side_is_detected() -> None:
    rng = np.random.default_rng(5)
    detected = 0
    for _ in range(20):
        a = ArmData.of("control", 1, *simulate(rng, 300, 0.05))
        b = ArmData.of("treatment", 1, *simulate(rng, 300, 0.10))
        analysis = analyse([a, b], min_readers=100)
        detected += analysis.comparisons[0].significant
        assert analysis.comparisons[0].difference and analysis.comparisons[0].difference > 0
    assert detected == 20


def test_significance_waits_for_the_minimum_sample_and_a_matching_split() -> None:
    rng = np.random.default_rng(9)
    a = ArmData.of("a", 1, *simulate(rng, 300, 0.05))
    b = ArmData.of("b", 1, *simulate(rng, 300, 0.15))
    assert analyse([a, b], min_readers=100).comparisons[0].significant
    early = analyse([a, b], min_readers=1000)
    assert not early.comparisons[0].significant and not early.enough_data
    assert "not enough data" in early.decision
    # 300 against 150 readers with equal weights: a sample ratio mismatch
    short = ArmData.of("b", 1, b.impressions[:150], b.clicks[:150])
    skewed = analyse([a, short], min_readers=100)
    assert skewed.sample_ratio.mismatch and not skewed.comparisons[0].significant
    assert "sample ratio mismatch" in skewed.decision


def test_summary_interval_widens_with_clustering() -> None:
    rng = np.random.default_rng(3)
    impressions, clicks = simulate(rng, 300, 0.1, spread=2.0)  # very different readers
    summary = summarise(ArmData.of("a", 1, impressions, clicks))
    plain = stats.binomtest(int(clicks.sum()), int(impressions.sum())).proportion_ci(
        method="wilson"
    )
    assert summary.ctr_low is not None and summary.ctr_high is not None
    assert summary.ctr_low < plain.low and summary.ctr_high > plain.high
    assert summary.ctr_low <= summary.ctr <= summary.ctr_high  # type: ignore[operator]


def test_no_data_gives_no_numbers_rather_than_errors() -> None:
    empty = ArmData.of("a", 1, [], [])
    analysis = analyse([empty, ArmData.of("b", 1, [], [])], min_readers=1)
    assert analysis.arms[0].ctr is None and analysis.comparisons[0].p_value is None
    assert not analysis.comparisons[0].significant
