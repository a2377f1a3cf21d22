"""`bookrec models`: list the registered model versions, activate one, roll back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from bookrec.cli.common import console, database, out, print_table, settings, user_errors

if TYPE_CHECKING:
    from bookrec.model_registry.registry import ModelRegistry
    from bookrec.model_registry.version import ModelVersion

app = typer.Typer(
    help="Model versions: list, activate, roll back.", no_args_is_help=True, rich_markup_mode=None
)

COLUMNS = ("version", "algo", "status", "metric", "created", "ratings", "readers", "books")


def _registry() -> ModelRegistry:
    from bookrec.model_registry.notify import redis_notifier
    from bookrec.model_registry.registry import ModelRegistry

    return ModelRegistry(settings().models_dir, redis_notifier(settings()))


def _metric(version: ModelVersion, metric: str) -> str:
    value = version.metrics.get(metric)
    return "-" if not isinstance(value, int | float) else f"{metric} {value:.4f}"


def _row(version: ModelVersion, metric: str) -> tuple[str, ...]:
    data = version.data
    created = "" if version.created_at is None else version.created_at.strftime("%Y-%m-%d %H:%M:%S")

    def count(name: str) -> str:
        value = data.get(name)
        return f"{value:,}" if isinstance(value, int) else "-"

    return (
        str(version.number),
        version.algo,
        version.status,
        _metric(version, metric),
        created,
        count("ratings"),
        count("readers"),
        count("books"),
    )


@app.command("list")
@user_errors
def list_models(
    as_json: bool = typer.Option(False, "--json", help="Print every version as JSON"),
) -> None:
    """Every model version, oldest first, with its status and gate metric."""
    with database() as session:
        versions = _registry().versions(session)
    if as_json:
        out.print_json(json.dumps([v.to_dict() for v in versions]))
        return
    if not versions:
        console.print("no model versions yet: run `bookrec train`", highlight=False)
        return
    metric = settings().gate_metric
    rows = [_row(v, metric) for v in versions]
    styles = ["bold green" if v.status == "active" else None for v in versions]
    print_table(COLUMNS, rows, right_from=5, styles=styles)


@app.command()
@user_errors
def activate(
    version: str = typer.Argument(..., help="The version number to make active"),
) -> None:
    """Make VERSION the active model (its artifacts are verified first)."""
    from bookrec.model_registry.version import version_number

    registry = _registry()
    with database() as session:
        previous = registry.active_number(session)
        chosen = registry.activate(session, version_number(version), actor="cli")
    was = f" (was {previous})" if previous and previous != chosen.number else ""
    console.print(f"version {chosen.number} ({chosen.algo}) is active{was}", highlight=False)


@app.command()
@user_errors
def rollback() -> None:
    """Re-activate the version that was active before the current one."""
    registry = _registry()
    with database() as session:
        previous = registry.active_number(session)
        restored = registry.rollback(session, actor="cli")
    console.print(
        f"rolled back from version {previous} to version {restored.number} ({restored.algo})",
        highlight=False,
    )
