"""Import benchmark: `bookrec data import` of goodbooks-scale ratings vs a bulk-load floor.

What is measured
----------------
Synthetic ratings are generated once (`bookrec data synth`, about 5.98M rows by 53k readers by
default). Then, for each backend (SQLite, PostgreSQL) and each repeat, two runs alternate:

* floor: a subprocess (`python -m benchmarks.import_bench --floor ...`) that loads the same
  ratings.csv into a bare table with no index, no constraint and no id mapping, in one
  transaction. SQLite: pyarrow.csv.read_csv, then a single executemany of all rows
  (journal_mode=WAL, synchronous=NORMAL, as bookrec uses). PostgreSQL: one plain
  `COPY bare FROM STDIN (FORMAT csv, HEADER true)` streaming the file in 1 MB chunks.
  That is about the least any importer on that backend can do, so it is the unit of cost.
* import: into a fresh, migrated database that already holds the bundled catalog (books and
  tags: set up, not timed), `bookrec data import WORK/synth --json`. Then, for information, the
  same directory is imported again (idempotent re-import: nothing changes).

Every timed run is a whole subprocess: wall-clock from the fork to the reaping of the child
(so interpreter startup and imports count on both sides), and the child's own peak RSS from
os.wait4. Each run gets a fresh database, which is dropped (or deleted) right after.

How to read it
--------------
The headline is the ratio import_i / floor_i, computed pair by pair (a floor and an import
measured back to back see the same machine load), then the median over repeats; min and max
show the spread. Absolute seconds move with the (shared, noisy) machine; the ratio should not
move much. Targets: ratio <= 2.0 and import peak RSS <= 1024 MB. Missing a target is reported,
not an error: the exit code is 0 whenever every run completed.

    python -m benchmarks.import_bench                                    # full size, 3 repeats
    python -m benchmarks.import_bench --readers 2000 --ratings 200000 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.common import Measured, PostgresScratch

# The floor subprocess runs this module too: keep module-level imports to the standard library
# so that the floor pays only for what it uses (pyarrow + sqlite3, or psycopg).

BACKENDS = ("sqlite", "postgresql")
RATING_COLUMNS = ("user_id", "book_id", "rating", "timestamp")
COPY_CHUNK_BYTES = 1 << 20
TARGET_RATIO = 2.0
TARGET_RSS_MB = 1024.0
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

SQLITE_FLOOR_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
SQLITE_BARE_TABLE = (
    "CREATE TABLE bare(user_id INTEGER, book_id INTEGER, rating INTEGER, timestamp INTEGER)"
)
POSTGRES_BARE_TABLE = (
    "CREATE TABLE bare(user_id bigint, book_id int, rating smallint, timestamp bigint)"
)
POSTGRES_COPY = "COPY bare FROM STDIN (FORMAT csv, HEADER true)"


# --- floors (run in their own subprocess) -------------------------------------------------------


def floor_sqlite(csv_path: Path, target: Path) -> int:
    """Bulk-load `csv_path` into a bare table of a new SQLite file; return the row count."""
    import sqlite3

    import pyarrow.csv as pacsv

    if target.exists():
        raise SystemExit(f"floor: {target} already exists; the floor needs a fresh file")
    connection = sqlite3.connect(target, isolation_level=None)  # explicit BEGIN/COMMIT below
    try:
        for pragma in SQLITE_FLOOR_PRAGMAS:
            connection.execute(pragma)
        connection.execute(SQLITE_BARE_TABLE)
        table = pacsv.read_csv(csv_path)
        columns = [table.column(name).to_numpy().tolist() for name in RATING_COLUMNS]
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO bare VALUES (?, ?, ?, ?)", zip(*columns, strict=True))
        connection.execute("COMMIT")
        return int(table.num_rows)
    finally:
        connection.close()


def floor_postgresql(csv_path: Path, target: str) -> int:
    """COPY `csv_path` into a bare table of the (fresh) database at `target`; return rows."""
    import psycopg

    with psycopg.connect(target) as connection:
        with connection.cursor() as cursor:
            cursor.execute(POSTGRES_BARE_TABLE)
            with csv_path.open("rb") as source, cursor.copy(POSTGRES_COPY) as copy:
                while chunk := source.read(COPY_CHUNK_BYTES):
                    copy.write(chunk)
            rows = cursor.rowcount
        connection.commit()
    return rows


def run_floor(backend: str, csv_path: Path, target: str) -> None:
    if backend == "sqlite":
        rows = floor_sqlite(csv_path, Path(target))
    else:
        rows = floor_postgresql(csv_path, target)
    print(json.dumps({"rows": rows}))


# --- the benchmark ------------------------------------------------------------------------------


class Bench:
    """Runs the floor/import pairs of one benchmark invocation; owns its scratch databases."""

    def __init__(
        self, workdir: Path, synth_dir: Path, catalog: Path, scratch: PostgresScratch | None
    ) -> None:
        from benchmarks.common import ROOT

        self.workdir = workdir
        self.synth_dir = synth_dir
        self.csv_path = synth_dir / "ratings.csv"
        self.catalog = catalog
        self.scratch = scratch
        self.logs = workdir / "logs"
        self.bookrec = str(Path(sys.executable).parent / "bookrec")
        env = dict(os.environ)
        # Subprocesses run in the work directory, so a developer's .env in the project root
        # cannot change what is measured; PYTHONPATH lets the floor find `benchmarks`.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        for name in ("DATABASE_URL", "BOOKREC_VAR_DIR"):
            env.pop(name, None)
        self.base_env = env

    def _env(self, database_url: str, var_dir: Path) -> dict[str, str]:
        # An empty DATABASE_URL means SQLite under BOOKREC_VAR_DIR (and overrides any .env).
        return {**self.base_env, "DATABASE_URL": database_url, "BOOKREC_VAR_DIR": str(var_dir)}

    def _measure(self, argv: list[str], env: dict[str, str]) -> Measured:
        from benchmarks.common import run_measured

        return run_measured(argv, env=env, cwd=self.workdir, logs=self.logs).check()

    def floor(self, backend: str) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:8]
        argv = [sys.executable, "-m", "benchmarks.import_bench", "--floor", backend]
        argv += ["--csv", str(self.csv_path)]
        if backend == "sqlite":
            target = self.workdir / f"floor-{tag}.sqlite3"
            try:
                measured = self._measure([*argv, "--target", str(target)], self.base_env)
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
        else:
            assert self.scratch is not None
            name, url = self.scratch.create()
            try:
                measured = self._measure([*argv, "--target", url], self.base_env)
            finally:
                self.scratch.drop(name)
        rows = int(json.loads(measured.stdout)["rows"])
        return {"seconds": measured.seconds, "peak_rss_mb": measured.peak_rss_mb, "rows": rows}

    def imports(self, backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(first import, re-import) of the synthetic ratings into a fresh catalog database."""
        from benchmarks.common import run_checked

        var_dir = self.workdir / f"var-{uuid.uuid4().hex[:8]}"
        name = None
        if backend == "sqlite":
            env = self._env("", var_dir)
        else:
            assert self.scratch is not None
            name, url = self.scratch.create()
            env = self._env(url, var_dir)
        try:
            run_checked([self.bookrec, "db", "upgrade"], env=env, cwd=self.workdir)
            run_checked(
                [self.bookrec, "data", "import", str(self.catalog), "--json"],
                env=env,
                cwd=self.workdir,
            )
            argv = [self.bookrec, "data", "import", str(self.synth_dir), "--json"]
            first = self._import_result(self._measure(argv, env))
            again = self._import_result(self._measure(argv, env))
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
            if name is not None:
                assert self.scratch is not None
                self.scratch.drop(name)
        return first, again

    @staticmethod
    def _import_result(measured: Measured) -> dict[str, Any]:
        from benchmarks.common import BenchmarkError

        try:
            report = json.loads(measured.stdout)
        except json.JSONDecodeError as exc:
            raise BenchmarkError(
                f"no JSON report from {' '.join(measured.argv)}: {measured.stdout[-500:]!r}"
            ) from exc
        return {
            "seconds": measured.seconds,
            "peak_rss_mb": measured.peak_rss_mb,
            "reported_seconds": float(report["seconds"]),
            "rows_read": int(report["files"].get("ratings.csv", 0)),
            "rows_written": int(report["written"].get("ratings", 0)),
            "readers_created": int(report.get("readers_created", 0)),
        }

    def backend(self, backend: str, repeats: int) -> dict[str, Any]:
        from benchmarks.common import summary

        runs: list[dict[str, Any]] = []
        for repeat in range(1, repeats + 1):
            floor = self.floor(backend)
            first, again = self.imports(backend)
            run = {
                "repeat": repeat,
                "floor": floor,
                "import": first,
                "reimport": again,
                "ratio": first["seconds"] / floor["seconds"],
                "reimport_ratio": again["seconds"] / floor["seconds"],
            }
            runs.append(run)
            log(
                f"{backend} {repeat}/{repeats}: floor {floor['seconds']:.2f}s, "
                f"import {first['seconds']:.2f}s (ratio {run['ratio']:.2f}, "
                f"{first['peak_rss_mb']:.0f} MB), re-import {again['seconds']:.2f}s "
                f"(ratio {run['reimport_ratio']:.2f})"
            )
            if first["rows_read"] != floor["rows"]:
                log(f"  warning: import read {first['rows_read']} rows, floor {floor['rows']}")
            if again["rows_written"]:
                log(f"  warning: the re-import wrote {again['rows_written']} ratings")

        def of(part: str, key: str) -> list[float]:
            return [float(run[part][key]) for run in runs]

        ratio = summary([run["ratio"] for run in runs])
        rss = summary(of("import", "peak_rss_mb"))
        return {
            "backend": backend,
            "rows": runs[-1]["import"]["rows_read"],
            "floor_seconds": summary(of("floor", "seconds")),
            "import_seconds": summary(of("import", "seconds")),
            "import_reported_seconds": summary(of("import", "reported_seconds")),
            "reimport_seconds": summary(of("reimport", "seconds")),
            "ratio": ratio,
            "reimport_ratio": summary([run["reimport_ratio"] for run in runs]),
            "import_peak_rss_mb": rss,
            "reimport_peak_rss_mb": summary(of("reimport", "peak_rss_mb")),
            "floor_peak_rss_mb": summary(of("floor", "peak_rss_mb")),
            "meets_targets": {
                "ratio": ratio["median"] <= TARGET_RATIO,
                "import_peak_rss": rss["median"] <= TARGET_RSS_MB,
            },
            "runs": runs,
        }


def markdown_table(results: list[dict[str, Any]]) -> str:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lines = [
        f"| backend | rows | floor s | import s | ratio (min-max) | target <= {TARGET_RATIO:g} "
        f"| import peak RSS MB | target <= {TARGET_RSS_MB:g} | floor peak RSS MB "
        "| re-import ratio |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for r in results:
        ratio = r["ratio"]
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['floor_seconds']['median']:.2f} "
            f"| {r['import_seconds']['median']:.2f} "
            f"| **{ratio['median']:.2f}** ({ratio['min']:.2f}-{ratio['max']:.2f}) "
            f"| {mark(r['meets_targets']['ratio'])} "
            f"| {r['import_peak_rss_mb']['median']:.0f} "
            f"| {mark(r['meets_targets']['import_peak_rss'])} "
            f"| {r['floor_peak_rss_mb']['median']:.0f} "
            f"| {r['reimport_ratio']['median']:.2f} |"
        )
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind through the finally blocks that drop databases


def benchmark(args: argparse.Namespace) -> int:
    from benchmarks.common import (
        ROOT,
        BenchmarkError,
        machine_info,
        postgres_scratch,
        run_checked,
    )

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise SystemExit(f"--backends: choose from {', '.join(BACKENDS)} (got {args.backends!r})")
    catalog = ROOT / "src" / "bookrec" / "demo" / "goodbooks-10k"
    signal.signal(signal.SIGTERM, _terminate)

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bookrec-bench-")) if own_workdir else args.workdir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            postgres_scratch(args.postgres_url) if "postgresql" in backends else nullcontext() as pg
        ):
            info = machine_info(pg.server_version() if pg else None)
            bench = Bench(workdir, workdir / "synth", catalog, pg)

            synth = [bench.bookrec, "data", "synth", "--out", str(bench.synth_dir)]
            if args.readers is not None:
                synth += ["--readers", str(args.readers)]
            if args.ratings is not None:
                synth += ["--ratings", str(args.ratings)]
            started = time.perf_counter()
            run_checked(synth, env=bench.base_env, cwd=workdir)
            synth_seconds = time.perf_counter() - started
            log(f"synthetic ratings: {bench.csv_path} in {synth_seconds:.1f}s")

            results = [bench.backend(backend, args.repeats) for backend in backends]
    except BenchmarkError as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    info["loadavg_at_end"] = list(os.getloadavg())
    document = {
        "benchmark": "import",
        "command": " ".join(["python", "-m", "benchmarks.import_bench", *sys.argv[1:]]),
        "settings": {
            "readers": args.readers,
            "ratings": args.ratings,
            "repeats": args.repeats,
            "backends": backends,
        },
        "targets": {"ratio_max": TARGET_RATIO, "import_peak_rss_mb_max": TARGET_RSS_MB},
        "machine": info,
        "synth_seconds": synth_seconds,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")

    print(markdown_table(results))
    print()
    print(
        f"ratio = import_i / floor_i per repeat (median of {args.repeats}); "
        f"targets: ratio <= {TARGET_RATIO:g}, import peak RSS <= {TARGET_RSS_MB:g} MB. "
        f"{info['cpu_model']}, {info['nproc']} CPUs, PostgreSQL {info['postgresql']}, "
        f"SQLite {info['sqlite']}, commit {info['git_commit']}."
    )
    print(f"raw numbers: {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.import_bench",
        description="Import cost of goodbooks-scale ratings, as a ratio to a bulk-load floor.",
    )
    parser.add_argument("--readers", type=int, help="synthetic readers (default: bookrec's)")
    parser.add_argument("--ratings", type=int, help="about how many ratings (default: bookrec's)")
    parser.add_argument("--repeats", type=int, default=3, help="floor/import pairs per backend")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--out", type=Path, default=here / "results" / "import.json", help="JSON results"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep scratch files here (default: a temp dir, removed)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BOOKREC_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin connection used to create and drop bookrec_bench_* databases",
    )
    floor = parser.add_argument_group("floor (internal: one floor run in this process)")
    floor.add_argument("--floor", choices=BACKENDS, help=argparse.SUPPRESS)
    floor.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    floor.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor and (args.csv is None or args.target is None):
        parser.error("--floor needs --csv and --target")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor:
        run_floor(args.floor, args.csv, args.target)
        return 0
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
