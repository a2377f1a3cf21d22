"""Train a recommender from the database, pass it through the evaluation gate, register it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine, select

from bookrec.config import Settings, load_settings
from bookrec.datasets.models import Dataset
from bookrec.db.session import unit_of_work
from bookrec.errors import InvalidInput
from bookrec.evaluation.tuned import TunedParams
from bookrec.experiments import service as experiments_service
from bookrec.model_registry.registry import ModelRegistry
from bookrec.model_registry.version import ModelVersion
from bookrec.readers import service as readers_service
from bookrec.readers.snapshot import load_snapshot
from bookrec.recsys import registry as algorithms
from bookrec.recsys.als import AlsRecommender
from bookrec.recsys.popularity import PopularityConfig, PopularityRecommender
from bookrec.training import gate as evaluation_gate
from bookrec.training import precompute

#: `progress(stage, percent)`: loading data 0-10, fitting 10-40, evaluating 40-50, fitting on all
#: the ratings 50-75, precomputing 75-80, gate 80-90, saving 90-100.
Progress = Callable[[str, float], None]
TrainingEngine = Literal["local", "spark"]


@dataclass(frozen=True)
class TrainResult:
    """The registered version, whether it became the active one, and the gate's decision."""

    version: ModelVersion
    promoted: bool
    gate: dict[str, Any]


def _model_params(
    algo: str, params: dict[str, Any] | None, tuned: TunedParams | None
) -> dict[str, Any]:
    chosen = dict(params or {})
    if tuned is not None and not chosen:
        chosen = tuned.params(algo)
        if algo == "hybrid" and "components" not in chosen:
            chosen["components"] = {
                name: tuned.params(name) for name in algorithms.HYBRID_COMPONENTS
            }
    return chosen


def train(
    engine: Engine,
    registry: ModelRegistry,
    algo: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    force: bool = False,
    activate: bool = True,
    progress: Progress | None = None,
    tuned: TunedParams | None = None,
    settings: Settings | None = None,
    engine_name: TrainingEngine = "local",
    spark_master: str | None = None,
) -> TrainResult:
    """Fit `algo` (default: the best available), gate it against the active model, register it.

    The gate's candidate is fitted on the gate's train part (everything but ~20 % of the
    ratings of a sample of readers) and scored on the held-out part; then the model that is
    saved and served is fitted again on all the ratings (the gate costs one extra fit; ALS
    starts it from the gate fit's factors, so it costs a few iterations, not a fit). It
    becomes active when `activate` and the gate passes (or `force`). A rejected candidate
    stays registered with its decision. Every version also carries all-time and trending
    popularity (the popular and trending lists and the cold-start fallback). Without
    explicit `params`, the ones `bookrec tune` stored for the algorithm are used.

    With `engine_name="spark"` (ALS only) both fits run on Apache Spark (`training.spark`,
    master `spark_master` or BOOKREC_SPARK_MASTER); everything else is the same.
    """
    settings = settings or load_settings()
    algo = algo or algorithms.DEFAULT_ALGO
    if engine_name == "spark" and algo != "als":
        raise InvalidInput(
            f"the spark engine trains only the als algorithm, not {algo!r}", field="engine"
        )
    try:
        model = algorithms.build(algo, _model_params(algo, params, tuned))
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"bad training request: {exc}") from None
    report: Progress = progress or (lambda _stage, _percent: None)

    started = time.perf_counter()
    report("loading data", 0.0)
    with unit_of_work(engine) as session:
        connection = session.connection()
        # versions first: a write landing before the ratings are read leaves its reader's
        # version older than their precomputed list, so that reader is scored live
        versions = precompute.activity_versions(connection) if settings.precompute_k else None
        snapshot = load_snapshot(connection)
        dataset_ids = list(session.scalars(select(Dataset.dataset_id)))
    if len(snapshot.interactions) == 0:
        raise InvalidInput("there are no ratings to train on: import a data set first")
    split = evaluation_gate.make_split(
        snapshot.interactions, snapshot.catalog, settings.gate_readers, settings.gate_metric
    )
    loaded = time.perf_counter()

    engine_info: dict[str, Any] = {"name": "local"}
    with contextlib.ExitStack() as stack:
        spark = None
        if engine_name == "spark":
            from bookrec.training.spark import SparkAls

            spark = stack.enter_context(
                SparkAls(
                    settings,
                    snapshot.interactions,
                    snapshot.catalog,
                    report,
                    master=spark_master,
                )
            )
            engine_info = spark.info
        report("fitting", 10.0)
        if spark is not None:
            assert isinstance(model, AlsRecommender)
            spark.fit(model, split.test, "fitting", 10.0)
        else:
            model.fit(split.train, snapshot.catalog)
        fitted = time.perf_counter()

        report("evaluating", 40.0)
        metrics = evaluation_gate.score(model, split, snapshot.catalog, fit=False)
        scored = time.perf_counter()
        # The gate's model has not seen the held-out ratings; the served one sees everything
        # (what the fit chose on validation, such as the hybrid's weights, stays).
        report("fitting on all the ratings", 50.0)
        if spark is not None:
            assert isinstance(model, AlsRecommender)
            spark.fit(model, None, "fitting on all the ratings", 50.0)
        else:
            model.refit(snapshot.interactions, snapshot.catalog)
        refitted = time.perf_counter()
    model_params = model.config.model_dump()
    # The candidate's artifacts are written now and the model let go, so that refitting the
    # active model for the gate never holds both in memory at once.
    staging = registry.staging()
    try:
        if algo != "popularity":
            model.save(staging / "model")
        if versions is not None:
            report("precomputing every reader's list", 75.0)
            with unit_of_work(engine) as session:
                precompute.write_lists(
                    staging / "lists",
                    model,
                    snapshot.interactions,
                    session.connection(),
                    versions,
                    k=settings.precompute_k,
                )
        for name, mode in (("popular", "all_time"), ("trending", "trending")):
            if algo == "popularity" and mode == "all_time":
                fallback: Any = model
            else:
                fallback = PopularityRecommender(PopularityConfig(mode=mode))
                fallback.fit(snapshot.interactions, snapshot.catalog)
            fallback.save(staging / name)
        del model, fallback
        written = time.perf_counter()

        report("evaluating", 80.0)
        with unit_of_work(engine) as session:
            active = registry.active(session)
        decision = evaluation_gate.decide(
            metrics,
            active,
            split,
            snapshot.catalog,
            metric=settings.gate_metric,
            tolerance=settings.gate_tolerance,
            force=force,
        )
        decided = time.perf_counter()

        report("saving", 90.0)
        promoted = activate and decision["decision"] == "promote"
        # registered (and activated) in one unit of work: all of it, or nothing and the
        # directory back in staging
        with unit_of_work(engine) as session:
            version = registry.register(
                session,
                staging,
                algo=algo,
                params=model_params,
                data={
                    **snapshot.summary(),
                    "dataset_ids": dataset_ids,
                    "fingerprint": split.key["fingerprint"],
                    "held_out_ratings": len(split.test),
                    "engine": engine_info,
                },
                metrics=metrics,
                gate=decision,
                status_reason=None
                if decision["decision"] == "promote"
                else f"evaluation gate: {decision['reason']}",
                timings={
                    "load": round(loaded - started, 3),
                    "fit": round(fitted - loaded, 3),
                    "evaluate": round(scored - fitted, 3),
                    "refit": round(refitted - scored, 3),
                    "gate_active": round(decided - written, 3),
                    "save": round(written - refitted + time.perf_counter() - decided, 3),
                    "total": round(time.perf_counter() - started, 3),
                },
            )
            if promoted:
                version = registry.activate(session, version.number, actor="train")
            # housekeeping with every training: what outlived its retention goes
            registry.prune(
                session,
                settings.model_retention_days,
                keep=experiments_service.versions_in_use(session),
            )
            readers_service.prune_events(session, readers_service.EventLimits.of(settings))
    except BaseException:
        registry.discard(staging)
        raise
    report("saving", 100.0)
    return TrainResult(version=version, promoted=promoted, gate=decision)
