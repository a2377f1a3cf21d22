"""Soak: production mode under mixed traffic for ten minutes; memory, errors, latency over time.

What is measured
----------------
The reliability suite's deployment (tests/reliability/deployment.py: a PostgreSQL cluster and
a Redis of its own, the small data set, a popularity model, `bookrec serve --workers 2`, no
job worker) with `--readers` readers looping over: rate a book, shelve one, list their
ratings, get their list, get the popular list (tests/reliability/load.py), for `--minutes`.
Every `--sample-seconds` the RSS of each API worker is read (psutil). Per minute: requests,
errors (anything but 200/201), latency p50 and p99 of all requests.

Targets: no error at all; RSS per worker flat, i.e. its last minute's mean within 10 % of its
second minute's (the first minute is warm-up: caches and pools fill); p99 of the last minute
at most twice the second minute's. The JSON report (`--out`) holds every sample.

    python -m benchmarks.soak                  # 10 minutes
    python -m benchmarks.soak --minutes 2      # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from tests.reliability.deployment import BOOKS, deploy, missing_binaries, worker_pids
from tests.reliability.load import Load, Outcome

RSS_TOLERANCE = 0.10
P99_TOLERANCE = 2.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def minute_rows(outcomes: list[Outcome], start: float, minutes: int) -> list[dict[str, Any]]:
    rows = []
    for minute in range(minutes):
        low, high = start + 60 * minute, start + 60 * (minute + 1)
        inside = [o for o in outcomes if low <= o.started < high]
        latencies = [(o.ended - o.started) * 1000 for o in inside]
        rows.append(
            {
                "minute": minute + 1,
                "requests": len(inside),
                "errors": sum(1 for o in inside if o.status not in (200, 201)),
                "p50_ms": round(percentile(latencies, 0.50), 1),
                "p99_ms": round(percentile(latencies, 0.99), 1),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("var/soak.json"))
    args = parser.parse_args()
    missing = missing_binaries()
    if missing:
        print(f"soak skipped: {missing}")
        return 0
    with deploy(job_worker=False) as deployed:
        assert deployed.serve is not None
        load = Load(deployed.base_url, readers=args.readers, books=BOOKS)
        load.sign_up()
        workers = sorted(worker_pids(deployed.serve))
        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        load.start()
        try:
            while time.monotonic() - start < 60 * args.minutes:
                time.sleep(args.sample_seconds)
                rss: dict[int, float | None] = {}
                for pid in workers:
                    try:
                        rss[pid] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
                    except psutil.NoSuchProcess:
                        rss[pid] = None
                samples.append({"t": round(time.monotonic() - start, 1), "rss_mb": rss})
        finally:
            load.stop()
    rows = minute_rows(load.outcomes, start, args.minutes)
    for row in rows:
        low, high = 60 * (row["minute"] - 1), 60 * row["minute"]
        for index, pid in enumerate(workers):
            values = [s["rss_mb"][pid] for s in samples if low < s["t"] <= high]
            row[f"rss_worker{index + 1}_mb"] = (
                round(statistics.mean(v for v in values if v is not None), 1) if values else None
            )
    verdicts = {
        "no_errors": all(row["errors"] == 0 for row in rows),
        "workers_alive": all(v is not None for s in samples for v in s["rss_mb"].values()),
    }
    if len(rows) >= 3:
        second, last = rows[1], rows[-1]
        for index in range(len(workers)):
            key = f"rss_worker{index + 1}_mb"
            verdicts[f"{key}_flat"] = last[key] <= second[key] * (1 + RSS_TOLERANCE)
        verdicts["p99_stable"] = last["p99_ms"] <= second["p99_ms"] * P99_TOLERANCE
    report = {"minutes": args.minutes, "readers": args.readers, "rows": rows, "samples": samples}
    report["verdicts"] = verdicts
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    header = ["minute", "requests", "errors", "p50_ms", "p99_ms"] + [
        f"rss_worker{i + 1}_mb" for i in range(len(workers))
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[key]) for key in header) + " |")
    print(json.dumps(verdicts))
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
