"""ALS on Spark (local mode) against ALS with `implicit`, on the same data: time, memory, NDCG@10.

    python -m benchmarks.spark_bench [--movielens DIR] [--synthetic] [--out FILE]

For each data set a fresh SQLite database under a scratch directory gets the ratings
(movielens-small: `bookrec data import DIR`; `--synthetic`: `bookrec data demo`, the bundled
catalog with 53,424 synthetic readers and ~6 M ratings, or `--readers N --ratings M`), then
`bookrec train --algo als --force --json` runs with `--engine local` and `--engine spark`.
Reported per run: wall-clock seconds of the command, the peak of the summed resident memory
of the command and every process it started (the JVM included; sampled every 0.2 s), the
fit/refit timings the version records and its NDCG@10 on the evaluation gate's held-out split
(the same split for both engines). docs/spark.md reports from this.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import machine_info

ROOT = Path(__file__).resolve().parents[1]
BOOKREC = Path(sys.executable).parent / "bookrec"


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run `argv`; wall seconds, peak summed RSS of its process tree (MB), stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.wait(0.2):
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for proc in tree:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            except psutil.Error:
                return
            peak = max(peak, total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}")
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mb": round(peak / 2**20),
        "stdout": stdout,
    }


def compare(name: str, load: list[str], work: Path, env: dict[str, str]) -> dict[str, Any]:
    subprocess.run(
        [str(BOOKREC), "db", "upgrade"], env=env, cwd=work, check=True, capture_output=True
    )
    subprocess.run(load, env=env, cwd=work, check=True, capture_output=True)
    results: dict[str, Any] = {}
    for engine in ("local", "spark"):
        run = measured(
            [str(BOOKREC), "train", "--algo", "als", "--force", "--json", "--engine", engine],
            env,
            work,
        )
        version = json.loads(run.pop("stdout"))
        results[engine] = {
            **run,
            "ndcg@10": version["metrics"].get("ndcg@10"),
            "fit_seconds": version["timings"]["fit"],
            "refit_seconds": version["timings"]["refit"],
            "ratings": version["data"]["ratings"],
            "engine": version["engine"],
        }
        print(f"{name} {engine}: {results[engine]}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--movielens", type=Path, default=ROOT.parent / "shared/data/movielens-small"
    )
    parser.add_argument("--synthetic", action="store_true", help="also synthetic goodbooks data")
    parser.add_argument("--readers", type=int, default=53_424, help="synthetic readers")
    parser.add_argument("--ratings", type=int, default=5_976_479, help="synthetic ratings")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/spark.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "spark", "machine": machine_info(None), "results": {}}
    report["load_average_before"] = os.getloadavg()
    sets: list[tuple[str, list[str]]] = []
    if args.movielens.name and (args.movielens / "ratings.csv").is_file():
        sets.append(("movielens-small", ["data", "import", str(args.movielens.resolve())]))
    if args.synthetic:
        sets.append(
            (
                f"goodbooks-synthetic-{args.ratings}",
                ["data", "demo", "--readers", str(args.readers), "--ratings", str(args.ratings)],
            )
        )
    for name, load in sets:
        work = Path(tempfile.mkdtemp(prefix="bookrec-spark-bench-"))
        env = {
            **os.environ,
            "BOOKREC_VAR_DIR": str(work / "var"),
            "DATABASE_URL": "",
            "BOOKREC_LOG_FORMAT": "console",
        }
        try:
            report["results"][name] = compare(name, [str(BOOKREC), *load], work, env)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report["load_average_after"] = os.getloadavg()
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"raw numbers: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
