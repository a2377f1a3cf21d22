"""Train a recommender from the database and register it as a new model version."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from bookrec.errors import InvalidInput
from bookrec.recsys import registry as algorithms
from bookrec.recsys.popularity import PopularityConfig, PopularityRecommender
from bookrec.training.dataset import load_snapshot
from bookrec.training.registry import ModelVersion, Registry
from bookrec.training.tuned import TunedParams

Progress = Callable[[str], None]


def train(
    engine: Engine,
    registry: Registry,
    algo: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    activate: bool = True,
    progress: Progress | None = None,
    tuned: TunedParams | None = None,
) -> ModelVersion:
    """Fit `algo` (default: the best available) on everything in the database.

    Every version also carries all-time and trending popularity, which serve the popular and
    trending lists and act as the cold-start fallback. Without explicit `params`, the ones
    `bookrec tune` stored for the algorithm (and for a hybrid's components) are used.
    """
    algo = algo or algorithms.DEFAULT_ALGO
    params = dict(params or {})
    if tuned is not None and not params:
        params = tuned.params(algo)
        if algo == "hybrid" and "components" not in params:
            params["components"] = {
                name: tuned.params(name) for name in algorithms.HYBRID_COMPONENTS
            }
    try:
        model = algorithms.build(algo, params)
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"bad training request: {exc}") from None
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    say("loading ratings and catalog from the database")
    with engine.connect() as connection:
        snapshot = load_snapshot(connection)
    if len(snapshot.interactions) == 0:
        raise InvalidInput("there are no ratings to train on: import a data set first")
    loaded = time.perf_counter()
    staging = registry.staging()
    try:
        say(f"fitting {algo} on {len(snapshot.interactions):,} ratings")
        model.fit(snapshot.interactions, snapshot.catalog)
        fitted = time.perf_counter()
        files = {}
        if algo != "popularity":
            files["model"] = model.save(staging / "model")["files"]
        for name, mode in (("popular", "all_time"), ("trending", "trending")):
            fallback = PopularityRecommender(PopularityConfig(mode=mode))
            if algo == "popularity" and mode == "all_time":
                fallback = model  # type: ignore[assignment]
            else:
                fallback.fit(snapshot.interactions, snapshot.catalog)
            files[name] = fallback.save(staging / name)["files"]
        info = {
            "algo": algo,
            "params": model.config.model_dump(),
            "data": snapshot.summary(),
            "timings_s": {
                "load": round(loaded - started, 3),
                "fit": round(fitted - loaded, 3),
                "total": round(time.perf_counter() - started, 3),
            },
            "artifacts": files,
        }
        version = registry.commit(staging, info)
    except BaseException:
        registry.discard(staging)
        raise
    if activate:
        registry.activate(version.version)
        say(f"version {version.version} is active")
    return version
