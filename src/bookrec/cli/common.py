"""What every command shares: settings, the engine, console output and clean failures.

Every command pays for what this module imports before it starts (`bookrec --help` too), so
the heavy libraries (SQLAlchemy, pydantic, rich's progress bars) are imported where used.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from bookrec.errors import BookrecError, DatabaseUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from bookrec.config import Settings

# Piped or redirected, a message is one line however long (no wrapping at 80 columns).
console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
out = Console(soft_wrap=not sys.stdout.isatty())

P = ParamSpec("P")
R = TypeVar("R")

#: Set while a command runs with `--json`: its errors are then JSON objects on stdout.
_json_errors: ContextVar[bool] = ContextVar("json_errors", default=False)

NOT_INITIALISED = "the database is not initialised: run `bookrec db upgrade` first"


def settings() -> Settings:
    """The settings, and logging set up from them (log lines go to stderr, never stdout,
    so `--json` output and CSV written to stdout stay parseable)."""
    from pydantic import ValidationError

    from bookrec.config import load_settings
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
    A database without bookrec's schema, or with an older one, stops the command with what
    to run (`db upgrade` migrates without coming here), and a missing SQLite file is not
    created.
    """
    import bookrec.schema  # noqa: F401
    from bookrec.db.engine import make_engine

    config = config or settings()
    _require_sqlite_file(config.sqlalchemy_url)
    db = make_engine(config.sqlalchemy_url)
    try:
        _require_schema(db)
    except BaseException:
        db.dispose()
        raise
    return db


def _require_sqlite_file(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if not Path(parsed.database).exists():
        fail(f"{NOT_INITIALISED} (no database file at {parsed.database})")


def _require_schema(db: Engine) -> None:
    """Fail unless the database's Alembic revision is this bookrec's newest."""
    from sqlalchemy import inspect, text

    from bookrec.schema.migrate import head_revision

    with db.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            fail(NOT_INITIALISED)
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = head_revision()
    if current != head:
        fail(
            f"the database schema is at revision {current}, this bookrec needs {head}: "
            "run `bookrec db upgrade`"
        )


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


def fail(message: str, code: int = 1, **fields: Any) -> NoReturn:
    """Stop the command with `message` and exit `code`: on stderr, or with `--json` as
    `{"error": message, ...fields}` on stdout."""
    if _json_errors.get():
        shown = {key: value for key, value in fields.items() if value is not None}
        typer.echo(json.dumps({"error": message, **shown}, default=str))
    else:
        console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def user_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn bookrec errors and unreachable databases into a message and exit code 1; a
    command's `as_json` parameter (`--json`) makes every error of it a JSON object."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _json_errors.set(bool(kwargs.get("as_json")))
        try:
            return function(*args, **kwargs)
        except DatabaseUnavailable as exc:
            # an operator at a terminal: the driver's own words (host, port, reason) help
            cause = getattr(exc.__cause__, "orig", None)
            fail(f"database error: {cause}" if cause is not None else exc.detail)
        except BookrecError as exc:
            fail(exc.detail, **_error_fields(exc))
        except Exception as exc:
            from sqlalchemy.exc import OperationalError

            if isinstance(exc, OperationalError):
                fail(f"database error: {exc.orig}")
            raise
        finally:
            _json_errors.reset(token)

    return wrapper


def _error_fields(error: BookrecError) -> dict[str, Any]:
    """What a JSON error adds to the message: the field (or file, line and column) at fault."""
    extra = error.extra
    fields = {"field": extra.get("field") or extra.get("column")}
    if "file" in extra:
        fields.update(file=extra["file"], line=extra.get("line"), value=extra.get("value"))
    return fields


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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

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


@contextmanager
def stage_progress(title: str) -> Iterator[Callable[[str, float], None]]:
    """A `progress(stage, percent)` callback: a rich bar on a terminal, a line per stage else."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    if not interactive():
        seen: set[str] = set()

        def plain(stage: str, _percent: float) -> None:
            if stage not in seen:
                seen.add(stage)
                console.print(f"{stage}…", highlight=False)

        yield plain
        return
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=100)

        def update(stage: str, percent: float) -> None:
            bar.update(task, description=stage, completed=percent)

        yield update
