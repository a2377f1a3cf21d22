"""What every command shares: settings, the engine, console output and clean failures."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import OperationalError

from bookrec.config import Settings, load_settings
from bookrec.errors import BookrecError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

console = Console(stderr=True)
out = Console()

P = ParamSpec("P")
R = TypeVar("R")


def settings() -> Settings:
    """The settings, and logging set up from them (log lines go to stderr, never stdout,
    so `--json` output and CSV written to stdout stay parseable)."""
    from bookrec.observability.logging import configure_logging

    try:
        config = load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"bad setting: {problems}")
    configure_logging(config.log_level, config.log_format)
    return config


def engine(config: Settings | None = None) -> Engine:
    """An engine on the configured database (the caller disposes of it).

    Every command reaches the database through here, so here every ORM model is imported
    (`bookrec.schema`) and every mapper can configure, whichever model a command uses first.
    """
    import bookrec.schema  # noqa: F401
    from bookrec.db.engine import make_engine

    config = config or settings()
    return make_engine(config.sqlalchemy_url, hide_parameters=True)


@contextmanager
def database(config: Settings | None = None) -> Iterator[Session]:
    """One unit of work on the configured database, its engine disposed of afterwards."""
    from bookrec.db.session import unit_of_work

    db = engine(config)
    try:
        with unit_of_work(db) as session:
            yield session
    finally:
        db.dispose()


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def user_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn bookrec errors and unreachable databases into a message and exit code 1."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except BookrecError as exc:
            fail(exc.detail)
        except OperationalError as exc:
            fail(f"database error: {exc.orig}")

    return wrapper


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right_from: int = 1,
    styles: Sequence[str | None] | None = None,
) -> None:
    """Rows on stdout: a rich table on a terminal, plain aligned columns for scripts and logs.

    Columns from `right_from` on are right-aligned; `styles` gives each row a rich style.
    """
    if out.is_terminal:
        from rich.table import Table

        table = Table(title=title)
        for index, name in enumerate(header):
            table.add_column(name, justify="right" if index >= right_from else "left")
        for index, row in enumerate(rows):
            table.add_row(*row, style=styles[index] if styles else None)
        out.print(table)
        return
    if title:
        typer.echo(title)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = (
            cell.rjust(width) if i >= right_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        typer.echo("  ".join(cells).rstrip())


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def byte_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback: a rich bar on a terminal, a line per file otherwise."""
    if not interactive():
        reported: set[str] = set()

        def plain(stage: str, done: int, total: int) -> None:
            if done >= total and stage not in reported:
                reported.add(stage)
                console.print(f"{stage}: done", highlight=False)

        yield plain
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update
