"""`bookrec train`: fit a recommender on the database and register the version."""

from __future__ import annotations

import json
from typing import Any, Literal, cast

import typer

from bookrec.cli.common import (
    console,
    database,
    engine,
    fail,
    out,
    settings,
    stage_progress,
    user_errors,
)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`--param key=value` pairs; values are read as JSON when they parse, else as text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param wants key=value, got {pair!r}", code=2)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def extra_params(arguments: list[str]) -> list[str]:
    """`--factors 64 --iterations=15` (options a model takes) -> ["factors=64", "iterations=15"]."""
    pairs: list[str] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or len(argument) < 3:
            fail(f"unexpected argument {argument!r}", code=2)
        name, sep, value = argument[2:].partition("=")
        if not sep:
            if index + 1 >= len(arguments):
                fail(f"{argument} needs a value", code=2)
            index += 1
            value = arguments[index]
        pairs.append(f"{name.replace('-', '_')}={value}")
        index += 1
    return pairs


@user_errors
def train(
    context: typer.Context,
    algo: str = typer.Option(
        None, help="popularity, content, itemknn, als, ease or hybrid (default: hybrid)"
    ),
    param: list[str] = typer.Option([], "--param", help="Hyper-parameter as key=value; repeatable"),
    activate: bool = typer.Option(
        True, help="Make the new version active when it passes the evaluation gate"
    ),
    force: bool = typer.Option(
        False, "--force", help="Activate even if the evaluation gate rejects the new version"
    ),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing if a model is active"),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON"),
    engine_name: str = typer.Option(
        "local",
        "--engine",
        help="local (this process) or spark (Apache Spark MLlib; --algo als only)",
    ),
    spark_master: str = typer.Option(
        None,
        "--spark-master",
        help="Spark master URL for --engine spark (default BOOKREC_SPARK_MASTER, local[*])",
    ),
) -> None:
    """Train a model on everything in the database and register it as a new version.

    The new version is evaluated against the active one on the same held-out split and
    activated only if it is not worse by more than BOOKREC_GATE_TOLERANCE (`--force`
    activates it regardless). Hyper-parameters go as `--param key=value` or directly as
    options the model takes, e.g. `bookrec train --algo als --factors 64 --iterations 15`.
    `--engine spark` fits the ALS on Apache Spark (docs/spark.md).
    """
    from bookrec.jobs.runner import run_inline
    from bookrec.jobs.schemas import TrainRequest
    from bookrec.jobs.service import local_user
    from bookrec.model_registry.notify import redis_notifier
    from bookrec.model_registry.registry import ModelRegistry

    config = settings()
    registry = ModelRegistry(config.models_dir, redis_notifier(config))
    with database(config) as session:
        active = registry.active_number(session)
    if if_missing and active is not None:
        console.print(f"model version {active} is active: not training", highlight=False)
        return
    params = parse_params([*param, *extra_params(context.args)])
    if engine_name not in ("local", "spark"):
        fail(f"--engine must be local or spark, not {engine_name!r}", code=2)
    if spark_master is not None and engine_name != "spark":
        fail("--spark-master needs --engine spark", code=2)
    db = engine(config)
    with stage_progress("training") as progress:
        # recorded as a job run here (trigger cli): a killed command is later marked failed
        result = run_inline(
            db,
            config,
            TrainRequest(
                algo=algo,
                params=params,
                force=force,
                activate=activate,
                engine=cast(Literal["local", "spark"], engine_name),
                spark_master=spark_master,
            ),
            trigger="cli",
            requested_by=local_user(),
            echo=progress,
            registry=registry,
        )
    db.dispose()
    version = result.version
    if as_json:
        out.print_json(json.dumps({**version.to_dict(), "promoted": result.promoted}))
        return
    data, gate = version.data, result.gate
    console.print(
        f"trained {version.algo} version {version.number} on {data['ratings']:,} ratings by "
        f"{data['readers']:,} readers over {data['books']:,} books "
        f"in {version.timings['total']:.1f}s"
        + (
            f" on Spark {version.engine.get('spark_version')} ({version.engine.get('master')})"
            if version.engine["name"] == "spark"
            else ""
        ),
        highlight=False,
    )
    console.print(f"evaluation gate: {gate['decision']} ({gate['reason']})", highlight=False)
    if result.promoted:
        console.print(f"version {version.number} is active", highlight=False)
    else:
        console.print(
            f"version {version.number} is registered as a candidate; "
            + (f"version {active} stays active" if active else "no version is active"),
            highlight=False,
        )
