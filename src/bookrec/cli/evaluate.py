"""`bookrec evaluate` and `bookrec tune`: offline comparison and hyper-parameter search."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from bookrec.cli.common import (
    console,
    database,
    fail,
    out,
    print_table,
    settings,
    stage_progress,
    user_errors,
)

SPLITS = ("random", "temporal", "leave-last-out")


@user_errors
def evaluate(
    algo: str = typer.Option(
        "popularity,content,itemknn,als,ease,hybrid", help="Comma-separated algorithms to compare"
    ),
    split: str = typer.Option("random", help="random | temporal | leave-last-out"),
    k: int = typer.Option(10, "--k", min=1, max=100, help="List length K for metrics @K"),
    fraction: float = typer.Option(0.2, min=0.05, max=0.5, help="Share of each reader held out"),
    seed: int = typer.Option(7, help="Random split seed (the first one, with --splits)"),
    n_splits: int = typer.Option(
        1,
        "--splits",
        min=1,
        max=30,
        help="Evaluate on N random splits (seeds SEED..SEED+N-1): each metric's mean with a 95 %"
        " interval, and a paired t-test of each model against --baseline",
    ),
    baseline: str = typer.Option(
        None, help="The model the others are tested against (default: the first in --algo)"
    ),
    out_dir: Path = typer.Option(None, "--out", help="Report directory (default VAR/reports/...)"),
    per_reader: bool = typer.Option(
        False, "--per-reader", help="Also write every reader's metrics into report.json (large)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON"),
) -> None:
    """Compare recommenders on held-out splits; write report.json and report.html."""
    from bookrec.evaluation.repeated import summarise
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
    if n_splits > 1 and split != "random":
        fail(f"--splits needs --split random: a {split} split is the same every time", code=2)
    baseline = baseline or names[0]
    if baseline not in names:
        fail(f"--baseline {baseline} is not one of the compared models ({algo})", code=2)
    config = settings()
    with database(config) as session:
        snapshot = load_snapshot(session.connection())
    if not len(snapshot.interactions):
        fail("there are no ratings to evaluate on: import a data set first")
    tuned = TunedParams(config.var_dir / "tuning")
    seeds = [seed + offset for offset in range(n_splits)]
    started = time.perf_counter()
    results = []
    with stage_progress("evaluating") as progress:
        for number, split_seed in enumerate(seeds, start=1):
            try:
                if split == "random":
                    train, test = splits.random_holdout(
                        snapshot.interactions, fraction=fraction, seed=split_seed
                    )
                elif split == "temporal":
                    train, test = splits.temporal(snapshot.interactions, fraction=fraction)
                else:
                    train, test = splits.leave_last_out(snapshot.interactions)
            except ValueError as exc:
                fail(str(exc))
            models = {name: algorithms.build(name, tuned.params(name)) for name in names}
            which = f" {number}/{n_splits} (seed {split_seed})" if n_splits > 1 else ""
            console.print(
                f"evaluating {', '.join(names)} on {split} split{which}: {len(train):,} "
                f"training and {len(test):,} held-out ratings",
                highlight=False,
            )

            def split_progress(
                stage: str, percent: float, done: int = number - 1, which: str = which
            ) -> None:
                progress(f"{stage}{which}", (100 * done + percent) / n_splits)

            results.append(
                run_evaluation(models, train, test, snapshot.catalog, k=k, progress=split_progress)
            )
    result = results[0]
    repeated = summarise(results, seeds, baseline) if n_splits > 1 else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = out_dir or config.reports_dir / f"evaluate-{stamp}"
    meta = {
        "split": split,
        "fraction": fraction,
        "seed": seed,
        "splits": n_splits,
        **snapshot.summary(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    json_path, html_path = write_report(
        result, directory, meta, per_user=per_reader, repeated=repeated
    )
    if as_json:
        metrics_json = result.to_dict(per_user=False)["metrics"]
        if repeated is not None:
            metrics_json = {
                model: {m: None if v is None else v["mean"] for m, v in values.items()}
                for model, values in repeated["metrics"].items()
            }
        out.print_json(
            json.dumps(
                {
                    "metrics": metrics_json,
                    **({} if repeated is None else {"repeated": repeated}),
                    "report": str(html_path),
                }
            )
        )
        return
    metrics = result.metric_names
    if repeated is None:
        rows = [
            [name, *(_cell(result.metrics[name].get(m)) for m in metrics)]
            for name in result.model_names
        ]
        print_table(["model", *metrics], rows, title=f"{split} split, K={k}")
    else:
        headline = f"ndcg@{k}"
        rows = [
            [
                name,
                *(_interval_cell(repeated["metrics"][name].get(m)) for m in metrics),
                "baseline"
                if name == baseline
                else _paired_cell(repeated["paired"][name].get(headline)),
            ]
            for name in result.model_names
        ]
        print_table(
            ["model", *metrics, f"{headline} vs {baseline} (paired t-test)"],
            rows,
            title=f"{n_splits} random splits, K={k}: mean ± half the 95 % interval",
        )
    console.print(f"report: {html_path} (data: {json_path})", highlight=False)


def _interval_cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "-"
    return f"{summary['mean']:.4f} ±{(summary['high'] - summary['low']) / 2:.4f}"


def _paired_cell(test: dict[str, Any] | None) -> str:
    from bookrec.evaluation.repeated import describe_paired

    return "-" if test is None else describe_paired(test)


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
