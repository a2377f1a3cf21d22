"""`bookrec train`: fit a recommender on the database and register the version."""

from __future__ import annotations

import json
from typing import Any

import typer

from bookrec.cli.common import console, engine, fail, out, settings, user_errors


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
    activate: bool = typer.Option(True, help="Make the new version the active one"),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing if a model is active"),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON"),
) -> None:
    """Train a model on everything in the database and register it as a new version.

    Hyper-parameters go as `--param key=value` or directly as options the model takes,
    e.g. `bookrec train --algo als --factors 64 --iterations 15`.
    """
    from bookrec.training.registry import Registry
    from bookrec.training.service import train as train_model
    from bookrec.training.tuned import TunedParams

    config = settings()
    registry = Registry(config.models_dir)
    if if_missing and registry.active() is not None:
        console.print(
            f"model version {registry.active_version()} is active: not training", highlight=False
        )
        return
    version = train_model(
        engine(config),
        registry,
        algo,
        parse_params([*param, *extra_params(context.args)]),
        activate=activate,
        progress=lambda message: console.print(message, highlight=False),
        tuned=TunedParams(config.var_dir / "tuning"),
    )
    if as_json:
        out.print_json(json.dumps({"version": version.version, **version.info}))
    else:
        data = version.info["data"]
        console.print(
            f"trained {version.algo} version {version.version} on {data['ratings']:,} ratings by "
            f"{data['readers']:,} readers over {data['books']:,} books "
            f"in {version.info['timings_s']['total']:.1f}s",
            highlight=False,
        )
