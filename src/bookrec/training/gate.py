"""The evaluation gate: a candidate is promoted only if it is not worse than the active model.

Both are judged on the same seeded held-out split of the training data: ~20 % of the ratings
of up to `BOOKREC_GATE_READERS` sampled readers are held out, the candidate is fitted on the
rest and scored on them with `BOOKREC_GATE_METRIC` (the model then saved is fitted again on
all the ratings: `training.service.train`). The active model's algorithm and params are
refitted on the same split and scored the same way, unless the active version's own gate
result was computed on an identical split (same data fingerprint, seed and protocol), which
is then reused. Promote if candidate >= active × (1 - tolerance);
the first model always passes; `force` promotes regardless and is recorded.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bookrec.model_registry.version import ModelVersion
from bookrec.recsys import registry as algorithms
from bookrec.recsys.data import Catalog, Interactions
from bookrec.recsys.evaluate import Model, evaluate
from bookrec.recsys.splits import sampled_holdout

#: The split's seed: fixed, so consecutive trainings on the same data share one split.
SEED = 20261126
HOLDOUT_FRACTION = 0.2
MIN_RATINGS = 5
RELEVANCE_THRESHOLD = 4.0


@dataclass(frozen=True)
class GateSplit:
    """Train and held-out parts of a snapshot, and the key that identifies the split."""

    train: Interactions
    test: Interactions
    key: dict[str, Any]


def canonical(interactions: Interactions) -> Interactions:
    """The same rows ordered by (reader, book), whatever order the database returned."""
    # one int64 key: a stable argsort of it is lexsort's order at a quarter of the time, and
    # the databases mostly return rows in this order already (a check, no sort)
    key = interactions.user_index.astype(np.int64) * max(len(interactions.items), 1)
    key += interactions.item_index
    if bool((key[1:] >= key[:-1]).all()):
        return interactions
    order = np.argsort(key, kind="stable")
    return replace(
        interactions,
        user_index=interactions.user_index[order],
        item_index=interactions.item_index[order],
        rating=interactions.rating[order],
        timestamp=None if interactions.timestamp is None else interactions.timestamp[order],
    )


def fingerprint(interactions: Interactions, catalog: Catalog) -> str:
    """sha256 over the (canonically ordered) ratings and the catalog's book ids."""
    digest = hashlib.sha256()
    for array in (
        interactions.users.ids[interactions.user_index].astype("<i8"),
        interactions.items.ids[interactions.item_index].astype("<i8"),
        interactions.rating.astype("<f4"),
        catalog.items.ids.astype("<i8"),
    ):
        digest.update(len(array).to_bytes(8, "little"))
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def metric_k(metric: str) -> int:
    """The K of a metric named like `ndcg@10`."""
    _name, _, k = metric.partition("@")
    return int(k) if k.isdigit() and int(k) > 0 else 10


def make_split(
    interactions: Interactions, catalog: Catalog, readers: int, metric: str
) -> GateSplit:
    """The gate's held-out split of `interactions` (canonically ordered first)."""
    ordered = canonical(interactions)
    train, test = sampled_holdout(
        ordered, readers, fraction=HOLDOUT_FRACTION, seed=SEED, min_ratings=MIN_RATINGS
    )
    key = {
        "fingerprint": fingerprint(ordered, catalog),
        "seed": SEED,
        "readers": readers,
        "fraction": HOLDOUT_FRACTION,
        "min_ratings": MIN_RATINGS,
        "relevance_threshold": RELEVANCE_THRESHOLD,
        "k": metric_k(metric),
    }
    return GateSplit(train, test, key)


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def score(model: Model, split: GateSplit, catalog: Catalog, *, fit: bool) -> dict[str, Any]:
    """Every offline metric of `model` on the held-out part (fitting it first if `fit`).

    Not-a-number values (nobody to evaluate) become None, so the result is JSON-ready.
    """
    if len(split.test) == 0:
        return {}
    result = evaluate(
        {"model": model},
        split.train,
        split.test,
        catalog,
        k=int(split.key["k"]),
        relevance_threshold=RELEVANCE_THRESHOLD,
        fit=fit,
    )
    metrics: dict[str, Any] = {
        name: _finite(value) for name, value in result.metrics["model"].items()
    }
    metrics["evaluated_readers"] = len(result.user_ids)
    metrics["held_out_ratings"] = len(split.test)
    return metrics


def _active_value(
    active: ModelVersion, split: GateSplit, catalog: Catalog, metric: str
) -> tuple[float | None, str, str | None]:
    """The active model's metric on this split: (value, how it was obtained, problem)."""
    recorded = active.gate.get("split")
    if recorded == split.key and metric in active.metrics:
        return _finite(active.metrics[metric]), "reused", None
    try:
        model = algorithms.build(active.algo, active.params)
        metrics = score(model, split, catalog, fit=True)
    except Exception as exc:  # the active model's recipe no longer fits: say so, do not block
        return None, "refit", f"the active model could not be refitted: {exc}"
    return _finite(metrics.get(metric)), "refit", None


def decide(
    candidate_metrics: dict[str, Any],
    active: ModelVersion | None,
    split: GateSplit,
    catalog: Catalog,
    *,
    metric: str,
    tolerance: float,
    force: bool = False,
) -> dict[str, Any]:
    """The gate's decision, with both metric values and how they were obtained."""
    started = time.perf_counter()
    candidate = _finite(candidate_metrics.get(metric))
    gate: dict[str, Any] = {
        "metric": metric,
        "candidate": candidate,
        "active": None,
        "threshold": None,
        "tolerance": tolerance,
        "forced": force,
        "compared_with": None,
        "active_source": None,
        "split": split.key,
    }
    if active is None:
        passed, reason = True, "first model: no active version to compare with"
    else:
        gate["compared_with"] = active.number
        value, source, problem = _active_value(active, split, catalog, metric)
        gate["active"] = value
        gate["active_source"] = source
        if problem is not None:
            passed, reason = True, problem
        elif value is None and candidate is None:
            passed, reason = True, "too little held-out data to compare the two models"
        elif candidate is None:
            passed, reason = False, f"the candidate has no {metric} on the held-out data"
        elif value is None:
            passed, reason = True, f"the active version has no {metric} on the held-out data"
        else:
            threshold = value * (1.0 - tolerance)
            gate["threshold"] = threshold
            passed = candidate >= threshold
            relation = ">=" if passed else "<"
            reason = (
                f"{metric} {candidate:.4f} {relation} {threshold:.4f} "
                f"(version {active.number}: {value:.4f}, tolerance {tolerance:.0%})"
            )
    gate["passed"] = passed
    gate["decision"] = "promote" if passed or force else "reject"
    gate["reason"] = reason + ("; promoted by force" if force and not passed else "")
    gate["seconds"] = round(time.perf_counter() - started, 3)
    return gate
