"""`bookrec experiments`: what operators look at — every experiment, and one with its results.

Creating, starting, stopping and shipping go through the admin API (audited per admin)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from bookrec.cli.common import console, database, out, print_table, settings, user_errors

if TYPE_CHECKING:
    from bookrec.experiments.models import Experiment

app = typer.Typer(
    help="A/B experiments: list them, show one with its results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _time(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _variants(experiment: Experiment) -> str:
    def one(v: Any) -> str:
        what = [v.strategy or "personal"]
        if v.model_version is not None:
            what.append(f"v{v.model_version}")
        return f"{v.name} ({' '.join(what)}, {v.weight:g})"

    return "; ".join(one(v) for v in experiment.variants)


@app.command("list")
@user_errors
def list_experiments(
    as_json: bool = typer.Option(False, "--json", help="Print every experiment as JSON"),
) -> None:
    """Every experiment, newest first, with its status and variants."""
    from bookrec.experiments import service
    from bookrec.experiments.schemas import ExperimentOut

    with database() as session:
        found, _total = service.page(session, 0, 10_000)
        outs = [ExperimentOut.model_validate(e) for e in found]
        rows = [
            (str(e.experiment_id), e.name, e.status, _time(e.started_at), _variants(e))
            for e in found
        ]
    if as_json:
        out.print_json(json.dumps([o.model_dump(mode="json") for o in outs]))
        return
    if not rows:
        console.print("no experiments yet: create one with POST /api/v1/admin/experiments")
        return
    print_table(("id", "name", "status", "started", "variants"), rows, right_from=5)


@app.command()
@user_errors
def show(
    experiment_id: int = typer.Argument(..., min=1, help="The experiment's id"),
    as_json: bool = typer.Option(False, "--json", help="Print it and its results as JSON"),
) -> None:
    """One experiment: per variant readers, impressions, clicks, CTR with its 95 % interval,
    each challenger against the control, the sample-ratio check and the decision."""
    from bookrec.experiments import service
    from bookrec.experiments.schemas import ExperimentOut

    with database() as session:
        experiment = service.get(session, experiment_id)
        header = ExperimentOut.model_validate(experiment)
        analysis = service.results(session, experiment, settings().experiment_min_readers)
    report = service.report(analysis)
    if as_json:
        out.print_json(json.dumps({**header.model_dump(mode="json"), "results": report}))
        return
    console.print(
        f"experiment {header.experiment_id} {header.name!r}: {header.status}", highlight=False
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f} %"

    print_table(
        ("variant", "readers", "impressions", "clicks", "CTR", "95 % interval"),
        [
            (
                arm.name,
                f"{arm.readers:,}",
                f"{arm.impressions:,}",
                f"{arm.clicks:,}",
                pct(arm.ctr),
                f"{pct(arm.ctr_low)} – {pct(arm.ctr_high)}",
            )
            for arm in analysis.arms
        ],
    )
    for c in analysis.comparisons:
        if c.difference is None:
            console.print(f"{c.variant} vs {c.control}: no data yet", highlight=False)
            continue
        console.print(
            f"{c.variant} vs {c.control}: {100 * c.difference:+.2f} points "
            f"({pct(c.difference_low)} – {pct(c.difference_high)}), p = {c.p_value:.3g}"
            f"{', significant' if c.significant else ''}",
            highlight=False,
        )
    console.print(f"decision: {analysis.decision}", highlight=False)
