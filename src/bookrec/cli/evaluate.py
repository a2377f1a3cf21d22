"""`bookrec evaluate` and `bookrec tune`: offline comparison and hyper-parameter search."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from bookrec.cli.common import console, database, fail, out, settings, user_errors

SPLITS = ("random", "temporal", "leave-last-out")


@user_errors
def evaluate(
    algo: str = typer.Option(
        "popularity,content,itemknn,als,ease,hybrid", help="Comma-separated algorithms to compare"
    ),
    split: str = typer.Option("random", help="random | temporal | leave-last-out"),
    k: int = typer.Option(10, "--k", min=1, max=100, help="List length K for metrics @K"),
    fraction: float = typer.Option(0.2, min=0.05, max=0.5, help="Share of each reader held out"),
    seed: int = typer.Option(7, help="Random split seed"),
    out_dir: Path = typer.Option(None, "--out", help="Report directory (default VAR/reports/...)"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON"),
) -> None:
    """Compare recommenders on a held-out split; write report.json and report.html."""
    from rich.table import Table

    from bookrec.evaluation.report import write_report
    from bookrec.evaluation.tuned import TunedParams
    from bookrec.readers.snapshot import load_snapshot
    from bookrec.recsys import registry as algorithms
    from bookrec.recsys import splits
    from bookrec.recsys.evaluate import evaluate as run_evaluation

    names = [name.strip() for name in algo.split(",") if name.strip()]
    unknown = [name for name in names if name not in algorithms.ALGORITHMS]
    if unknown or not names:
        fail(
            f"unknown algorithm {unknown[0] if unknown else algo!r}; choose from "
            f"{', '.join(sorted(algorithms.ALGORITHMS))}",
            code=2,
        )
    if split not in SPLITS:
        fail(f"--split must be one of {', '.join(SPLITS)}", code=2)
    config = settings()
    with database(config) as session:
        snapshot = load_snapshot(session.connection())
    if not len(snapshot.interactions):
        fail("there are no ratings to evaluate on: import a data set first")
    try:
        if split == "random":
            train, test = splits.random_holdout(snapshot.interactions, fraction=fraction, seed=seed)
        elif split == "temporal":
            train, test = splits.temporal(snapshot.interactions, fraction=fraction)
        else:
            train, test = splits.leave_last_out(snapshot.interactions)
    except ValueError as exc:
        fail(str(exc))
    tuned = TunedParams(config.var_dir / "tuning")
    models = {name: algorithms.build(name, tuned.params(name)) for name in names}
    console.print(
        f"evaluating {', '.join(names)} on a {split} split: {len(train):,} training and "
        f"{len(test):,} held-out ratings",
        highlight=False,
    )
    started = time.perf_counter()
    result = run_evaluation(models, train, test, snapshot.catalog, k=k)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = out_dir or config.reports_dir / f"evaluate-{stamp}"
    meta = {
        "split": split,
        "fraction": fraction,
        "seed": seed,
        **snapshot.summary(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    json_path, html_path = write_report(result, directory, meta)
    if as_json:
        out.print_json(
            json.dumps(
                {"metrics": result.to_dict(per_user=False)["metrics"], "report": str(html_path)}
            )
        )
        return
    metrics = result.metric_names
    rows = [
        [name, *(_cell(result.metrics[name].get(m)) for m in metrics)]
        for name in result.model_names
    ]
    if out.is_terminal:
        table = Table(title=f"{split} split, K={k}")
        table.add_column("model")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:  # plain aligned columns for scripts and logs
        print(f"{split} split, K={k}")
        header = ["model", *metrics]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print(
                "  ".join(
                    cell.rjust(w) if i else cell.ljust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                )
            )
    console.print(f"report: {html_path} (data: {json_path})", highlight=False)


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


@user_errors
def tune(
    algo: str = typer.Option(
        ..., help="Algorithm to tune: ease, itemknn, als, content, popularity"
    ),
    budget: str = typer.Option("10m", help="Time budget, e.g. 90s, 10m, 1h"),
    trials: int = typer.Option(None, min=1, help="Stop after this many trials"),
    k: int = typer.Option(10, "--k", min=1, max=100, help="Optimise NDCG@K"),
    seed: int = typer.Option(7, help="Validation split and sampler seed"),
) -> None:
    """Search hyper-parameters on a validation split; `bookrec train` then uses the best."""
    from bookrec.evaluation.tuned import TunedParams
    from bookrec.evaluation.tuning import parse_budget
    from bookrec.evaluation.tuning import tune as run_tuning
    from bookrec.readers.snapshot import load_snapshot

    seconds = parse_budget(budget)
    config = settings()
    with database(config) as session:
        snapshot = load_snapshot(session.connection())
    if not len(snapshot.interactions):
        fail("there are no ratings to tune on: import a data set first")
    record = run_tuning(
        snapshot.interactions,
        snapshot.catalog,
        algo,
        seconds,
        max_trials=trials,
        k=k,
        seed=seed,
        progress=lambda message: console.print(message, highlight=False),
    )
    path = TunedParams(config.var_dir / "tuning").put(algo, record)
    console.print(
        f"best {record['metric']} {record['score']:.4f} after {record['trials']} trials "
        f"(defaults: {_cell(record['default_score'])}): {record['params']}; saved to {path}",
        highlight=False,
    )
