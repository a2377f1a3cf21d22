"""Hyper-parameter search with Optuna on a validation split carved from the training data.

The split never touches data held out for final evaluation: `tune` runs on everything in
the database, holds out part of each reader's ratings as validation, and maximises NDCG@K
there within a time budget. The best params are stored for `bookrec train`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import optuna

from bookrec.errors import InvalidInput
from bookrec.recsys import registry as algorithms
from bookrec.recsys.data import Catalog, Interactions
from bookrec.recsys.evaluate import evaluate
from bookrec.recsys.splits import random_holdout

SearchSpace = Callable[[optuna.trial.BaseTrial], dict[str, Any]]

SPACES: dict[str, SearchSpace] = {
    "ease": lambda t: {"l2": t.suggest_float("l2", 10.0, 5000.0, log=True)},
    "itemknn": lambda t: {
        "neighbours": t.suggest_int("neighbours", 10, 500, log=True),
        "shrinkage": t.suggest_float("shrinkage", 0.0, 100.0),
    },
    "als": lambda t: {
        "factors": t.suggest_int("factors", 16, 256, log=True),
        "regularization": t.suggest_float("regularization", 1e-3, 1.0, log=True),
        "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
        "iterations": t.suggest_int("iterations", 5, 30),
    },
    "content": lambda t: {
        "author_weight": t.suggest_float("author_weight", 0.0, 4.0),
        "tag_weight": t.suggest_float("tag_weight", 0.0, 4.0),
    },
    "popularity": lambda t: {
        "score": t.suggest_categorical("score", ["liked_count", "bayesian"]),
        "min_rating": t.suggest_float("min_rating", 3.0, 5.0, step=1.0),
    },
}

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_budget(text: str) -> float:
    """'90s', '10m', '1.5h' or plain seconds -> seconds."""
    match = _BUDGET.match(text)
    if not match:
        raise InvalidInput(f"budget {text!r} is not a duration like 90s, 10m or 1h")
    value = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if value <= 0:
        raise InvalidInput("the budget must be positive")
    return value


def tune(
    interactions: Interactions,
    catalog: Catalog,
    algo: str,
    budget_seconds: float,
    *,
    max_trials: int | None = None,
    k: int = 10,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Search `algo`'s params; returns the record stored for `bookrec train`."""
    if algo not in SPACES:
        raise InvalidInput(
            f"{algo!r} has nothing to tune here; choose from {', '.join(sorted(SPACES))}"
        )
    train, valid = random_holdout(interactions, fraction=0.2, seed=seed)
    metric = f"ndcg@{k}"
    say = progress or (lambda _message: None)

    def objective(trial: optuna.Trial) -> float:
        params = SPACES[algo](trial)
        model = algorithms.build(algo, params)
        result = evaluate({algo: model}, train, valid, catalog, k=k)
        value = float(result.metrics[algo][metric])
        say(f"trial {trial.number}: {metric}={value:.4f} {params}")
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # trial 0 is the defaults, so a tuned result is never worse than untuned on validation
    default = algorithms.ALGORITHMS[algo].config_class().model_dump()
    study.enqueue_trial(SPACES[algo](optuna.trial.FixedTrial(default)))
    started = time.perf_counter()
    study.optimize(objective, timeout=budget_seconds, n_trials=max_trials, catch=(ValueError,))
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise InvalidInput(f"no trial of {algo} finished within {budget_seconds:.0f}s")
    best = study.best_trial
    return {
        "algo": algo,
        "params": SPACES[algo](optuna.trial.FixedTrial(best.params)),
        "metric": metric,
        "score": best.value,
        "default_score": completed[0].value if completed[0].number == 0 else None,
        "trials": len(completed),
        "seconds": round(time.perf_counter() - started, 1),
        "validation": {"split": "random_holdout", "fraction": 0.2, "seed": seed},
        "data": {"ratings": len(interactions), "readers": len(interactions.users)},
        "tuned_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
