"""`bookrec db`: schema migrations."""

from __future__ import annotations

import typer

from bookrec.cli.common import console, settings, user_errors

app = typer.Typer(help="Database schema.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
@user_errors
def upgrade(revision: str = typer.Argument("head", help="Alembic revision to reach")) -> None:
    """Migrate the database to the newest schema (safe to run repeatedly)."""
    from bookrec.schema import migrate

    config = settings()
    migrate.upgrade(config.sqlalchemy_url, revision)
    console.print(f"database schema is at {revision}", highlight=False)
