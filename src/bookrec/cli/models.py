"""`bookrec models`: list the registered model versions, activate one, roll back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from bookrec.cli.common import console, engine, out, settings, user_errors

if TYPE_CHECKING:
    from bookrec.training.registry import ModelVersion, Registry

app = typer.Typer(help="Model versions: list, activate, roll back.", no_args_is_help=True)

COLUMNS = ("version", "algo", "status", "metric", "created", "ratings", "readers", "books")


def _registry() -> Registry:
    from bookrec.cli.train import redis_notifier_of
    from bookrec.training.registry import Registry

    config = settings()
    return Registry(engine(config), config.models_dir, redis_notifier_of(config))


def _metric(version: ModelVersion, metric: str) -> str:
    value = version.info.get("metrics", {}).get(metric)
    return "-" if not isinstance(value, int | float) else f"{metric} {value:.4f}"


def _row(version: ModelVersion, metric: str) -> tuple[str, ...]:
    data = version.info.get("data", {})
    created = str(version.info.get("created_at") or "")[:19].replace("T", " ")

    def count(name: str) -> str:
        value = data.get(name)
        return f"{value:,}" if isinstance(value, int) else "-"

    return (
        version.version,
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
    versions = _registry().versions()
    if as_json:
        out.print_json(json.dumps([v.to_dict() for v in versions]))
        return
    if not versions:
        console.print("no model versions yet: run `bookrec train`", highlight=False)
        return
    metric = settings().gate_metric
    rows = [_row(v, metric) for v in versions]
    if out.is_terminal:
        from rich.table import Table

        table = Table(title="model versions")
        for column in COLUMNS:
            table.add_column(column, justify="right" if column in COLUMNS[5:] else "left")
        for row, version in zip(rows, versions, strict=True):
            style = "bold green" if version.status == "active" else None
            table.add_row(*row, style=style)
        out.print(table)
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    for line in (COLUMNS, *rows):
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


@app.command()
@user_errors
def activate(
    version: str = typer.Argument(..., help="The version number to make active"),
) -> None:
    """Make VERSION the active model (its artifacts are verified first)."""
    registry = _registry()
    previous = registry.active_version()
    chosen = registry.activate(version, actor="cli")
    was = f" (was {previous})" if previous and previous != chosen.version else ""
    console.print(f"version {chosen.version} ({chosen.algo}) is active{was}", highlight=False)


@app.command()
@user_errors
def rollback() -> None:
    """Re-activate the version that was active before the current one."""
    registry = _registry()
    previous = registry.active_version()
    restored = registry.rollback(actor="cli")
    console.print(
        f"rolled back from version {previous} to version {restored.version} ({restored.algo})",
        highlight=False,
    )
