"""What one list request costs the app, in instructions: a figure the shared machine cannot move.

Wall-clock ratios (`serve_bench`) move by ±0.05 or more from run to run here, which hides a
change of a few percent on the request path. This drives the app in-process (no server, no
network: every variant pays those the same) through its ASGI interface, and is meant to run
under `valgrind --tool=callgrind`, whose instruction counts are the same on every run of the
same code and data, whatever else the machine does:

    python -m benchmarks.request_cost --var-dir VAR \\
        --variant plain=/work/plain --variant tuned=/work/tuned

runs, for each variant (a checkout with its own `.venv`), the same random requests twice under
callgrind, 100 and 1,100 of them, and prints the difference of the two totals divided by
1,000: the instructions of one request, start-up and warm-up excluded. Two lists are
measured: `k=10` over all readers (the cold path: a precomputed list) and
`k=10&explain=true` over 300 readers asked once before (the warm path: cache hits).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.serve_bench import bookrec_env, mint_key


async def _get(app: Any, path: str, query: str, key: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"x-api-key", key.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def _drive(requests: int, readers: int, query: str, key: str, warm_pass: bool) -> float:
    """Send the requests; the CPU seconds they took (start-up and warm-up not counted)."""
    from bookrec.api.server import served_app

    app = served_app()
    picks = random.Random(20261130)
    async with app.router.lifespan_context(app):
        if warm_pass:  # fill the cache with these readers' lists first
            for user in range(1, readers + 1):
                await _get(app, f"/api/v1/recommendations/users/{user}", query, key)
        started = time.process_time()
        for _ in range(requests):
            user = picks.randint(1, readers)
            status = await _get(app, f"/api/v1/recommendations/users/{user}", query, key)
            if status != 200:
                raise SystemExit(f"status {status} for user {user}")
        return time.process_time() - started


PATHS = {"cold": ("k=10", 0, False), "warm": ("k=10&explain=true", 300, True)}


def drive(argv: list[str]) -> None:
    """One run inside callgrind: the app of this interpreter's bookrec, N requests."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--var-dir", type=Path, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--readers", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--warm-pass", action="store_true")
    args = parser.parse_args(argv)
    os.environ.update(bookrec_env(args.var_dir))
    # the model poll would add work in proportion to the (slowed-down) run's length
    os.environ["BOOKREC_MODEL_POLL_SECONDS"] = "60"
    os.environ["BOOKREC_API_KEY_CACHE_SECONDS"] = "300"  # no key look-up every 10 s either
    seconds = asyncio.run(_drive(args.requests, args.readers, args.query, args.key, args.warm_pass))
    print(f"cpu_us_per_request {seconds / args.requests * 1e6:.2f}")


def cpu_microseconds(python: Path, argv: list[str]) -> float:
    """CPU microseconds per request of one `drive` run (not under callgrind)."""
    here = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [str(python), "-m", "benchmarks.request_cost", "drive", *argv],
        cwd=here,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(run.stdout.split("cpu_us_per_request")[-1])


def instructions(python: Path, argv: list[str]) -> int:
    """Total instructions of one `drive` run under callgrind."""
    here = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            str(python),
            "-m",
            "benchmarks.request_cost",
            "drive",
            *argv,
        ],
        cwd=here,  # `benchmarks` from here; `bookrec` from the variant's environment
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same work in every run
        capture_output=True,
        text=True,
        check=True,
    )
    for line in run.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise RuntimeError(f"no instruction count in callgrind's output:\n{run.stderr[-2000:]}")


def _arguments(var_dir: Path, key: str, readers: int, path: str, requests: int) -> list[str]:
    query, sample, warm = PATHS[path]
    return [
        *("--var-dir", str(var_dir), "--key", key, "--query", query),
        *("--readers", str(sample or readers), "--requests", str(requests)),
        *(["--warm-pass"] if warm else []),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["drive"]:
        drive(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--var-dir", type=Path, required=True, help="data and an active model")
    parser.add_argument("--variant", action="append", required=True, help="NAME=CHECKOUT")
    parser.add_argument("--measure", choices=("instructions", "cpu"), default="instructions")
    parser.add_argument("--low", type=int, default=100, help="instructions: the shorter run")
    parser.add_argument("--high", type=int, default=1100, help="instructions: the longer run")
    parser.add_argument("--rounds", type=int, default=5, help="cpu: alternating runs each")
    parser.add_argument("--requests", type=int, default=4000, help="cpu: requests per run")
    args = parser.parse_args(argv)
    key, readers = mint_key(bookrec_env(args.var_dir))
    variants = [(v.partition("=")[0], Path(v.partition("=")[2]) / ".venv" / "bin" / "python")
                for v in args.variant]  # fmt: skip
    results: dict[tuple[str, str], list[float]] = {}
    if args.measure == "cpu":  # alternating, one at a time: CPU time still feels the load
        for _ in range(args.rounds):
            for path in PATHS:
                for name, python in variants:
                    arguments = _arguments(args.var_dir, key, readers, path, args.requests)
                    results.setdefault((name, path), []).append(cpu_microseconds(python, arguments))
    else:  # counts do not depend on what else runs: both cores at once
        jobs = [
            (name, path, python, _arguments(args.var_dir, key, readers, path, count))
            for name, python in variants
            for path in PATHS
            for count in (args.low, args.high)
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(lambda job: instructions(job[2], job[3]), jobs))
        for (name, path, _, _), low, high in zip(jobs[::2], counts[::2], counts[1::2], strict=True):
            results[(name, path)] = [(high - low) / (args.high - args.low)]
    unit = "instructions" if args.measure == "instructions" else "CPU µs (median of runs)"
    print(f"per request, {unit}: " + ", ".join(PATHS))
    for name, _ in variants:
        cells = []
        for path in PATHS:
            values = sorted(results[(name, path)])
            cells.append(
                f"{values[len(values) // 2]:,.1f}" + (f" {values}" if len(values) > 1 else "")
            )
        print(f"{name}: " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
