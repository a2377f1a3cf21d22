"""`bookrec evaluate --splits N`: every metric over N seeded splits, with intervals and a
paired test of each model against a baseline (`recsys.significance`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bookrec.recsys.evaluate import EvaluationResult
from bookrec.recsys.significance import mean_interval, paired_t_test


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def describe_paired(test: Mapping[str, Any]) -> str:
    """One paired test in words: `+0.0100 (+3.3%), p = 0.000521`."""
    relative = "" if test["relative"] is None else f" ({test['relative']:+.1%})"
    p_value = "–" if test["p_value"] is None else f"{test['p_value']:.3g}"
    return f"{test['difference']:+.4f}{relative}, p = {p_value}"


def summarise(results: list[EvaluationResult], seeds: list[int], baseline: str) -> dict[str, Any]:
    """Per model and metric: mean, 95 % interval and the per-split values; per model (other
    than the baseline) and metric: the paired test against the baseline. JSON-ready."""
    models, metrics = results[0].model_names, results[0].metric_names
    values = {
        model: {metric: np.array([r.metrics[model][metric] for r in results]) for metric in metrics}
        for model in models
    }
    summary: dict[str, Any] = {
        "splits": len(results),
        "seeds": seeds,
        "baseline": baseline,
        "confidence": 0.95,
        "metrics": {},
        "paired": {},
    }
    for model in models:
        summary["metrics"][model] = {}
        for metric in metrics:
            series = values[model][metric]
            if not np.isfinite(series).all():
                summary["metrics"][model][metric] = None
                continue
            interval = mean_interval(series)
            summary["metrics"][model][metric] = {
                "mean": interval.mean,
                "low": interval.low,
                "high": interval.high,
                "values": series.tolist(),
            }
        if model == baseline:
            continue
        summary["paired"][model] = {}
        for metric in metrics:
            ours, theirs = values[model][metric], values[baseline][metric]
            if not (np.isfinite(ours).all() and np.isfinite(theirs).all()):
                continue
            test = paired_t_test(ours, theirs)
            summary["paired"][model][metric] = {
                "difference": test.difference,
                "relative": _finite(test.relative),
                "p_value": test.p_value,
            }
    return summary
