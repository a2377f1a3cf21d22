"""The `bookrec` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from bookrec.cli import data, db, experiments, models, users
from bookrec.cli.evaluate import evaluate, tune
from bookrec.cli.recommend import recommend
from bookrec.cli.serve import serve
from bookrec.cli.train import train
from bookrec.cli.worker import scheduler, worker

app = typer.Typer(
    name="bookrec",
    help="Book recommendations: import data, train, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # plain help: Typer's rich help loads a Markdown parser (~160 ms) on every --help
    rich_markup_mode=None,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        import bookrec

        typer.echo(f"bookrec {bookrec.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version"
    ),
) -> None:
    """Book recommendations: import data, train, evaluate, serve."""


app.add_typer(db.app, name="db")
app.add_typer(data.app, name="data")
app.add_typer(users.app, name="users")
app.add_typer(models.app, name="models")
app.add_typer(experiments.app, name="experiments")
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(train)
app.command()(recommend)
app.command()(serve)
app.command()(evaluate)
app.command()(tune)
app.command()(worker)
app.command()(scheduler)

if __name__ == "__main__":
    app()
