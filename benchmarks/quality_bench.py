"""Recommendation quality on a goodbooks-layout data set, scored by an independent script.

    python -m benchmarks.quality_bench DATA_DIR [--algos default,popularity,...] [--k 10]

The protocol is ../shared/tools/refeval.py's: a per-user 20 % random holdout (seed 7),
relevant = held-out ratings >= 4, train items excluded. For each algorithm the pipeline is
what a user runs: `bookrec data import TRAIN_DIR`, `bookrec train [--algo A]`,
`bookrec recommend --batch USERS.csv --k K --out RECS.csv`; refeval then scores RECS.csv.
`default` means `bookrec train` with no --algo (the default recommender); `als@spark`
trains with `--engine spark`. Every training is `--force`d, so each list comes from its own
version. refeval's own baselines (popularity, item-kNN, EASE, ALS) are computed on the same
split for reference.

The data set is read from DATA_DIR and never copied into this repository (MovieLens'
licence forbids redistribution).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine_info, run_checked, run_measured

ROOT = Path(__file__).resolve().parents[1]
BOOKREC = Path(sys.executable).parent / "bookrec"
REFEVAL = ROOT.parent / "shared" / "tools" / "refeval.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="goodbooks-layout directory (e.g. movielens-small)")
    parser.add_argument(
        "--algos",
        default="default,popularity,content,itemknn,als,ease,hybrid",
        help="comma-separated; 'default' = bookrec train without --algo; ALGO@ENGINE trains "
        "with --engine ENGINE (als@spark)",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--refeval", type=Path, default=REFEVAL)
    parser.add_argument("--no-baselines", action="store_true", help="skip refeval's baselines")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quality.json")
    return parser.parse_args(argv)


def _baselines(refeval: Path, split: Path, k: int, env: dict[str, str]) -> dict[str, Any]:
    output = run_checked(
        [sys.executable, str(refeval), "baselines", str(split), str(k)], env=env, cwd=split
    ).stdout
    results: dict[str, Any] = {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        pairs = dict(re.findall(r"(\S+)=(\S+)", rest))
        if pairs:
            results[name] = {key: float(value) for key, value in pairs.items()}
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "ratings.csv").is_file():
        print(f"no ratings.csv in {args.data}: nothing to measure", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bookrec-quality-"))
    env = {
        **os.environ,
        "BOOKREC_VAR_DIR": str(work / "var"),
        "DATABASE_URL": "",
        "BOOKREC_LOG_FORMAT": "console",
    }
    try:
        split = work / "split"
        run_checked(
            [sys.executable, str(args.refeval), "split", str(args.data.resolve()), str(split)],
            env=env,
            cwd=work,
        )
        with (split / "test.csv").open() as handle:
            users = sorted({int(row["user_id"]) for row in csv.DictReader(handle)})
        users_csv = work / "users.csv"
        users_csv.write_text("user_id\n" + "\n".join(map(str, users)) + "\n")
        run_checked([str(BOOKREC), "db", "upgrade"], env=env, cwd=work)
        run_checked([str(BOOKREC), "data", "import", str(split / "train")], env=env, cwd=work)
        results: dict[str, Any] = {}
        for algo in args.algos.split(","):
            # --force: each algorithm's own version must be the one recommending
            train_argv = [str(BOOKREC), "train", "--json", "--force"]
            name, _, engine = algo.partition("@")
            if name != "default":
                train_argv += ["--algo", name]
            if engine:
                train_argv += ["--engine", engine]
            trained = run_measured(train_argv, env=env, cwd=work, logs=work / "logs").check()
            recs = work / f"recs-{algo}.csv"
            recommended = run_measured(
                [
                    str(BOOKREC),
                    "recommend",
                    "--batch",
                    str(users_csv),
                    "--k",
                    str(args.k),
                    "--out",
                    str(recs),
                ],
                env=env,
                cwd=work,
                logs=work / "logs",
            ).check()
            scored = run_checked(
                [sys.executable, str(args.refeval), "score", str(split), str(recs), str(args.k)],
                env=env,
                cwd=work,
            ).stdout
            metrics = json.loads(scored.strip().splitlines()[-1])
            version = trained.json_report()
            results[algo] = {
                **metrics,
                "algo": version.get("algo"),
                "engine": version.get("engine"),
                "params": version.get("params"),
                "train_seconds": round(trained.seconds, 2),
                "recommend_seconds": round(recommended.seconds, 2),
            }
            print(
                f"{algo:12s} ndcg@{args.k}={metrics[f'ndcg@{args.k}']:.4f} "
                f"recall@{args.k}={metrics[f'recall@{args.k}']:.4f} "
                f"coverage={metrics['coverage']:.4f} (train {trained.seconds:.1f}s)",
                flush=True,
            )
        baselines = {} if args.no_baselines else _baselines(args.refeval, split, args.k, env)
        for name, metrics in baselines.items():
            print(f"refeval {name:16s} ndcg@{args.k}={metrics.get(f'ndcg@{args.k}', 0):.4f}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "benchmark": "quality",
                    "data": str(args.data),
                    "k": args.k,
                    "command": " ".join(
                        [sys.executable, "-m", "benchmarks.quality_bench", *sys.argv[1:]]
                    ),
                    "machine": machine_info(None),
                    "results": results,
                    "refeval_baselines": baselines,
                    "date": time.strftime("%Y-%m-%d"),
                },
                indent=2,
            )
        )
        print(f"raw numbers: {args.out}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
