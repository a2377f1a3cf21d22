"""The statistics of an experiment's click-through rates, clustered by reader.

An exposure is a (reader, book) pair shown at least once; its click is the first click on it.
A reader contributes many exposures whose clicks go together (some readers click a lot), so
treating exposures as independent trials understates the noise and finds differences that are
not there. Every interval and test here treats the reader as the unit: CTR is a ratio of two
per-reader sums, whose variance comes from the delta method (Deng, Knoblich & Lu 2018,
"Applying the Delta Method in Metric Analytics"). `tests/experiments/test_statistics.py`
checks the calibration: an A/A comparison is significant at 5 % in about 5 % of runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
#: A sample-ratio mismatch is flagged below this p-value (a bug in assignment, not chance).
SRM_P_VALUE = 0.001


@dataclass(frozen=True)
class ArmData:
    """One variant's exposures per reader (readers with at least one exposure)."""

    name: str
    weight: float
    impressions: np.ndarray
    clicks: np.ndarray

    @classmethod
    def of(
        cls, name: str, weight: float, impressions: Sequence[int], clicks: Sequence[int]
    ) -> ArmData:
        return cls(
            name,
            weight,
            np.asarray(impressions, dtype=np.float64),
            np.asarray(clicks, dtype=np.float64),
        )

    @property
    def readers(self) -> int:
        return len(self.impressions)


@dataclass(frozen=True)
class ArmSummary:
    name: str
    readers: int
    impressions: int
    clicks: int
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None


@dataclass(frozen=True)
class Comparison:
    """A variant against the control (the first variant)."""

    variant: str
    control: str
    difference: float | None
    difference_low: float | None
    difference_high: float | None
    relative_lift: float | None
    z: float | None
    p_value: float | None
    alpha: float
    significant: bool


@dataclass(frozen=True)
class SampleRatio:
    expected_share: list[float]
    observed_readers: list[int]
    chi_square: float | None
    p_value: float | None
    mismatch: bool


def ratio_and_variance(impressions: np.ndarray, clicks: np.ndarray) -> tuple[float, float]:
    """CTR (sum of clicks over sum of impressions) and its variance by the delta method,
    readers as independent units. NaN variance with fewer than two readers."""
    m = len(impressions)
    if m == 0 or impressions.sum() == 0:
        return math.nan, math.nan
    mean_n, mean_c = impressions.mean(), clicks.mean()
    ratio = mean_c / mean_n
    if m < 2:
        return float(ratio), math.nan
    var_n = impressions.var(ddof=1)
    var_c = clicks.var(ddof=1)
    cov = float(np.cov(clicks, impressions, ddof=1)[0, 1])
    variance = (var_c - 2 * ratio * cov + ratio**2 * var_n) / (m * mean_n**2)
    return float(ratio), float(max(variance, 0.0))


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion `p` observed over `n` (possibly effective,
    non-integer) trials."""
    if n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(arm: ArmData) -> ArmSummary:
    """Readers, impressions, clicks and CTR with a 95 % interval: Wilson's interval over the
    effective number of impressions (impressions divided by the design effect of clustering
    by reader, never below 1), so the interval widens when readers differ."""
    total_n, total_c = int(arm.impressions.sum()), int(arm.clicks.sum())
    if total_n == 0:
        return ArmSummary(arm.name, arm.readers, 0, 0, None, None, None)
    ratio, variance = ratio_and_variance(arm.impressions, arm.clicks)
    binomial = ratio * (1 - ratio) / total_n
    design_effect = 1.0
    if binomial > 0 and not math.isnan(variance):
        design_effect = max(1.0, variance / binomial)
    low, high = wilson(ratio, total_n / design_effect)
    return ArmSummary(arm.name, arm.readers, total_n, total_c, ratio, low, high)


def compare(control: ArmData, variant: ArmData, alpha: float) -> Comparison:
    """The variant's CTR minus the control's, its 95 % interval and a two-sided z-test on the
    delta-method variances (readers as units)."""
    r0, v0 = ratio_and_variance(control.impressions, control.clicks)
    r1, v1 = ratio_and_variance(variant.impressions, variant.clicks)
    if any(math.isnan(x) for x in (r0, v0, r1, v1)):
        return Comparison(
            variant.name, control.name, None, None, None, None, None, None, alpha, False
        )
    difference = r1 - r0
    se = math.sqrt(v0 + v1)
    lift = None if r0 == 0 else difference / r0
    if se == 0:
        # no variation at all: identical rates are no evidence, different ones are certain
        z, p = (0.0, 1.0) if difference == 0 else (None, 0.0)
    else:
        z = difference / se
        p = float(2 * stats.norm.sf(abs(z)))
    return Comparison(
        variant.name,
        control.name,
        difference,
        difference - Z95 * se,
        difference + Z95 * se,
        lift,
        z,
        p,
        alpha,
        p < alpha,
    )


def sample_ratio(arms: Sequence[ArmData]) -> SampleRatio:
    """A chi-square test of the readers per variant against the weights: a mismatch means
    assignment or logging is broken, and the comparison cannot be trusted."""
    weights = np.asarray([arm.weight for arm in arms], dtype=np.float64)
    shares = weights / weights.sum()
    observed = np.asarray([arm.readers for arm in arms], dtype=np.float64)
    total = observed.sum()
    if total == 0:
        return SampleRatio(shares.tolist(), [0] * len(arms), None, None, False)
    result = stats.chisquare(observed, f_exp=shares * total)
    p = float(result.pvalue)
    return SampleRatio(
        shares.tolist(),
        [int(x) for x in observed],
        float(result.statistic),
        p,
        p < SRM_P_VALUE,
    )


@dataclass(frozen=True)
class Analysis:
    arms: list[ArmSummary]
    comparisons: list[Comparison]
    sample_ratio: SampleRatio
    min_readers: int
    enough_data: bool
    decision: str


def analyse(arms: Sequence[ArmData], min_readers: int, alpha: float = 0.05) -> Analysis:
    """Every variant summarised and compared with the first (the control).

    With more than one challenger the level is split between them (Bonferroni). A difference
    only counts as significant once every variant has `min_readers` readers with exposures and
    the sample ratio matches the weights: looking early and often at a small sample finds
    differences that are noise, and a broken split compares different populations.
    """
    summaries = [summarise(arm) for arm in arms]
    level = alpha / max(1, len(arms) - 1)
    ratio = sample_ratio(arms)
    enough = all(arm.readers >= min_readers for arm in arms)
    comparisons = []
    for arm in arms[1:]:
        comparison = compare(arms[0], arm, level)
        if comparison.significant and (not enough or ratio.mismatch):
            comparison = Comparison(**{**comparison.__dict__, "significant": False})
        comparisons.append(comparison)
    if ratio.mismatch:
        decision = (
            f"sample ratio mismatch (chi-square p = {ratio.p_value:.2g}): readers are not split "
            "as the weights say; do not trust the comparison"
        )
    elif not enough:
        fewest = min(arms, key=lambda arm: arm.readers) if arms else None
        decision = (
            f"not enough data: every variant needs {min_readers} readers with impressions "
            f"({fewest.name if fewest else '-'} has {fewest.readers if fewest else 0})"
        )
    elif winners := [c for c in comparisons if c.significant]:
        best = max(winners, key=lambda c: c.difference or 0.0)
        direction = "better" if (best.difference or 0) > 0 else "worse"
        decision = (
            f"{best.variant} is {direction} than {best.control} (p = {best.p_value:.2g} < "
            f"{best.alpha:.3g})"
        )
    else:
        decision = "no significant difference"
    return Analysis(summaries, comparisons, ratio, min_readers, enough, decision)
