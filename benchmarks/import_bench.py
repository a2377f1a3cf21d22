"""Import benchmark: `bookrec data import` of goodbooks-scale ratings vs a bulk-load floor.

What is measured
----------------
Synthetic ratings are generated once (`bookrec data synth`, about 5.98M rows by 53k readers by
default).

The headline is what a user waits for: `bookrec data import DIR --json` from start to exit,
where DIR holds goodbooks' books.csv and the ratings as `user_id,book_id,rating` (no
timestamp column), into a fresh migrated database (the migration is set-up, not timed). Its
whole-process seconds are divided by the floor's own operation seconds (below) on that
ratings.csv, run just before it. Targets: <= 1.5 on SQLite, <= 2 on PostgreSQL, peak RSS
<= 1 GB.

Then, for the ratings path alone, for each backend (SQLite, PostgreSQL) and each repeat, two
runs alternate:

* floor: a subprocess (`python -m benchmarks.import_bench --floor ...`) that loads the same
  ratings.csv into a bare table with no index, no constraint and no id mapping, in one
  transaction. SQLite: pyarrow.csv.read_csv, then a single executemany of all rows
  (journal_mode=WAL, synchronous=NORMAL, as bookrec uses). PostgreSQL: one plain
  `COPY bare FROM STDIN (FORMAT csv, HEADER true)` streaming the file in 1 MB chunks.
  That is about the least any importer on that backend can do, so it is the unit of cost.
* import: into a fresh, migrated database that already holds the bundled catalog (books and
  tags: set up, not timed), `bookrec data import WORK/synth --json`. Then, for information, the
  same directory is imported again (idempotent re-import: nothing changes).

Each run is timed twice over:

* operation seconds, measured inside the process with time.perf_counter around the work
  itself. Import: the `seconds` that `bookrec data import --json` reports, which times the
  import call from opening the files to the commit (it also covers creating the engine and
  opening its one connection, a few milliseconds that count against the import). Floor: the
  floor times itself and prints `{"rows": ..., "seconds": ...}` on stdout. SQLite: from
  reading the CSV (pyarrow read_csv, to_numpy().tolist(), zip) through executemany and
  COMMIT. PostgreSQL: from opening the file and starting the COPY through the commit.
  Connecting, the pragmas and the CREATE TABLE of the bare table are set-up, outside it.
* process seconds: wall clock from the fork to the reaping of the child, so interpreter
  start-up, library imports, connection set-up and exit count too; plus the child's own peak
  RSS from os.wait4.

Each run gets a fresh database, which is dropped (or deleted) right after.

How to read it
--------------
Both ratios are computed pair by pair (a floor and an import measured back to back see the
same machine load), then summarised as median over repeats, with min and max for the spread.
Absolute seconds move with the (shared, noisy) machine; the ratios should not move much.

* op ratio (the headline) = import operation seconds / floor operation seconds: what importing
  the data costs compared with the bare bulk load of the same file. Target: <= 2.0.
* process ratio (secondary) = import process seconds / floor process seconds. The `bookrec`
  CLI pays a fixed start-up (Python, SQLAlchemy, pydantic, numpy, pyarrow, typer: about 1 s)
  that does not grow with the data, while the floor imports only sqlite3+pyarrow or psycopg.
  So at small sizes this ratio mostly measures start-up, not importing; that is why it is not
  the headline. It is reported next to it, not hidden, and the JSON keeps each run's time
  outside the operation (process - operation seconds, i.e. start-up, set-up and exit).
* re-import op ratio = re-import operation seconds / floor operation seconds.
* import peak RSS: the whole import process. Target: <= 1024 MB.

Missing a target is reported, not an error: the exit code is 0 whenever every run completed.

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
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.common import Measured, PostgresScratch

# The floor subprocess runs this module too: keep module-level imports to the standard library
# so that the floor pays only for what it uses (pyarrow + sqlite3, or psycopg).

BACKENDS = ("sqlite", "postgresql")
RATING_COLUMNS = ("user_id", "book_id", "rating", "timestamp")
COPY_CHUNK_BYTES = 1 << 20
TARGET_OP_RATIO = 2.0
# the whole command (catalog + ratings, start to exit) over the floor's own operation
TARGET_WHOLE_RATIO = {"sqlite": 1.5, "postgresql": 2.0}
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


def floor_sqlite(csv_path: Path, target: Path) -> tuple[int, float]:
    """Bulk-load `csv_path` into a bare table of a new SQLite file: (rows, operation seconds).

    The operation runs from reading the CSV through the COMMIT; connecting, the pragmas and
    the CREATE TABLE are set-up, outside it.
    """
    import sqlite3

    import pyarrow.csv as pacsv

    if target.exists():
        raise SystemExit(f"floor: {target} already exists; the floor needs a fresh file")
    connection = sqlite3.connect(target, isolation_level=None)  # explicit BEGIN/COMMIT below
    try:
        for pragma in SQLITE_FLOOR_PRAGMAS:
            connection.execute(pragma)
        connection.execute(SQLITE_BARE_TABLE)
        started = time.perf_counter()
        table = pacsv.read_csv(csv_path)
        names = [name for name in RATING_COLUMNS if name in table.column_names]
        columns = [table.column(name).to_numpy().tolist() for name in names]
        placeholders = ", ".join("?" * len(names))
        connection.execute("BEGIN")
        connection.executemany(
            f"INSERT INTO bare ({', '.join(names)}) VALUES ({placeholders})",
            zip(*columns, strict=True),
        )
        connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        return int(table.num_rows), seconds
    finally:
        connection.close()


def floor_postgresql(csv_path: Path, target: str) -> tuple[int, float]:
    """COPY `csv_path` into a bare table of the (fresh) database at `target`: (rows, seconds).

    The operation runs from opening the file and starting the COPY through the commit;
    connecting and the CREATE TABLE (same transaction) are set-up, outside it.
    """
    import psycopg

    with psycopg.connect(target) as connection:
        with connection.cursor() as cursor:
            cursor.execute(POSTGRES_BARE_TABLE)
            started = time.perf_counter()
            with csv_path.open("rb") as source:
                names = source.readline().decode().strip()
                source.seek(0)
            copy_sql = POSTGRES_COPY.replace("bare", f"bare ({names})", 1)
            with csv_path.open("rb") as source, cursor.copy(copy_sql) as copy:
                while chunk := source.read(COPY_CHUNK_BYTES):
                    copy.write(chunk)
            rows = cursor.rowcount
        connection.commit()
        seconds = time.perf_counter() - started
    return rows, seconds


def run_floor(backend: str, csv_path: Path, target: str) -> None:
    if backend == "sqlite":
        rows, seconds = floor_sqlite(csv_path, Path(target))
    else:
        rows, seconds = floor_postgresql(csv_path, target)
    print(json.dumps({"rows": rows, "seconds": seconds}), flush=True)


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
        self.user_dir = workdir / "user"  # made by user_directory() once the ratings exist
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

    def floor(self, backend: str, csv_path: Path | None = None) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:8]
        argv = [sys.executable, "-m", "benchmarks.import_bench", "--floor", backend]
        argv += ["--csv", str(csv_path or self.csv_path)]
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
        report = measured.json_report()
        return _timings(measured, float(report["seconds"])) | {"rows": int(report["rows"])}

    @contextmanager
    def _fresh_database(self, backend: str) -> Iterator[dict[str, str]]:
        """The environment of a fresh, migrated database (dropped or deleted afterwards)."""
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
            yield env
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
            if name is not None:
                assert self.scratch is not None
                self.scratch.drop(name)

    def imports(self, backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(first import, re-import) of the synthetic ratings into a fresh catalog database."""
        from benchmarks.common import run_checked

        with self._fresh_database(backend) as env:
            run_checked(
                [self.bookrec, "data", "import", str(self.catalog), "--json"],
                env=env,
                cwd=self.workdir,
            )
            argv = [self.bookrec, "data", "import", str(self.synth_dir), "--json"]
            first = self._import_result(self._measure(argv, env))
            again = self._import_result(self._measure(argv, env))
        return first, again

    def user_directory(self) -> Path:
        """What a user imports: goodbooks' books.csv and the ratings as
        `user_id,book_id,rating` (no timestamp column)."""
        import pyarrow.csv as pacsv

        directory = self.workdir / "user"
        directory.mkdir(exist_ok=True)
        shutil.copy(self.catalog / "books.csv", directory / "books.csv")
        ratings = pacsv.read_csv(self.csv_path).select(list(RATING_COLUMNS[:3]))
        pacsv.write_csv(ratings, directory / "ratings.csv")
        return directory

    def whole_command(self, backend: str, directory: Path) -> dict[str, Any]:
        """`bookrec data import DIRECTORY` (catalog and ratings) from start to exit, into a
        fresh migrated database (the migration is set-up, not timed)."""
        with self._fresh_database(backend) as env:
            argv = [self.bookrec, "data", "import", str(directory), "--json"]
            measured = self._measure(argv, env)
        return self._import_result(measured) | {
            "books_written": int(measured.json_report()["written"].get("books", 0))
        }

    @staticmethod
    def _import_result(measured: Measured) -> dict[str, Any]:
        report = measured.json_report()
        return _timings(measured, float(report["seconds"])) | {
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
                "op_ratio": _ratio(first, floor, "op_seconds"),
                "process_ratio": _ratio(first, floor, "process_seconds"),
                "reimport_op_ratio": _ratio(again, floor, "op_seconds"),
                "reimport_process_ratio": _ratio(again, floor, "process_seconds"),
            }
            runs.append(run)
            log(
                f"{backend} {repeat}/{repeats}: floor op {floor['op_seconds']:.2f}s "
                f"(process {floor['process_seconds']:.2f}s), import op {first['op_seconds']:.2f}s "
                f"(process {first['process_seconds']:.2f}s, {first['peak_rss_mb']:.0f} MB): "
                f"op ratio {run['op_ratio']:.2f}, process ratio {run['process_ratio']:.2f}; "
                f"re-import op {again['op_seconds']:.2f}s (op ratio {run['reimport_op_ratio']:.2f})"
            )
            if first["rows_read"] != floor["rows"]:
                log(f"  warning: import read {first['rows_read']} rows, floor {floor['rows']}")
            if again["rows_written"]:
                log(f"  warning: the re-import wrote {again['rows_written']} ratings")

        # the headline: what a user waits for, the whole command with its catalog
        wholes: list[dict[str, Any]] = []
        for repeat in range(1, repeats + 1):
            floor = self.floor(backend, self.user_dir / "ratings.csv")
            whole = self.whole_command(backend, self.user_dir)
            ratio = whole["process_seconds"] / floor["op_seconds"]
            wholes.append({"repeat": repeat, "floor": floor, "whole": whole, "ratio": ratio})
            log(
                f"{backend} whole command {repeat}/{repeats}: floor op {floor['op_seconds']:.2f}s "
                f"(process {floor['process_seconds']:.2f}s), `bookrec data import` "
                f"{whole['process_seconds']:.2f}s (its own report {whole['op_seconds']:.2f}s, "
                f"{whole['peak_rss_mb']:.0f} MB): ratio {ratio:.2f}"
            )
            if whole["rows_read"] != floor["rows"] or not whole["books_written"]:
                log(
                    f"  warning: read {whole['rows_read']} ratings and wrote "
                    f"{whole['books_written']} books; the floor read {floor['rows']}"
                )

        def of(part: str, key: str) -> list[float]:
            return [float(run[part][key]) for run in runs]

        def ratios(key: str) -> dict[str, float]:
            return summary([float(run[key]) for run in runs])

        op_ratio = ratios("op_ratio")
        rss = summary(of("import", "peak_rss_mb"))
        result: dict[str, Any] = {"backend": backend, "rows": runs[-1]["import"]["rows_read"]}
        for part in ("floor", "import", "reimport"):
            for key in ("op_seconds", "process_seconds", "outside_op_seconds"):
                result[f"{part}_{key}"] = summary(of(part, key))
        whole_ratio = summary([float(w["ratio"]) for w in wholes])
        whole_rss = summary([float(w["whole"]["peak_rss_mb"]) for w in wholes])
        target = TARGET_WHOLE_RATIO[backend]
        return result | {
            "whole_command": {
                "ratio": whole_ratio,
                "process_ratio": summary(
                    [w["whole"]["process_seconds"] / w["floor"]["process_seconds"] for w in wholes]
                ),
                "seconds": summary([float(w["whole"]["process_seconds"]) for w in wholes]),
                "floor_op_seconds": summary([float(w["floor"]["op_seconds"]) for w in wholes]),
                "peak_rss_mb": whole_rss,
                "target_ratio": target,
                "meets_targets": whole_ratio["median"] <= target
                and whole_rss["median"] <= TARGET_RSS_MB,
                "runs": wholes,
            },
            "op_ratio": op_ratio,
            "process_ratio": ratios("process_ratio"),
            "reimport_op_ratio": ratios("reimport_op_ratio"),
            "reimport_process_ratio": ratios("reimport_process_ratio"),
            "import_peak_rss_mb": rss,
            "reimport_peak_rss_mb": summary(of("reimport", "peak_rss_mb")),
            "floor_peak_rss_mb": summary(of("floor", "peak_rss_mb")),
            "meets_targets": {
                "op_ratio": op_ratio["median"] <= TARGET_OP_RATIO,
                "import_peak_rss": rss["median"] <= TARGET_RSS_MB,
            },
            "runs": runs,
        }


def _timings(measured: Measured, op_seconds: float) -> dict[str, Any]:
    """Both clocks of one run: its own operation seconds and the whole process's."""
    return {
        "op_seconds": op_seconds,
        "process_seconds": measured.seconds,
        "outside_op_seconds": measured.seconds - op_seconds,  # start-up, set-up and exit
        "peak_rss_mb": measured.peak_rss_mb,
    }


def _ratio(run: dict[str, Any], floor: dict[str, Any], key: str) -> float:
    from benchmarks.common import BenchmarkError

    if floor[key] <= 0:
        raise BenchmarkError(f"floor {key} is {floor[key]!r}: no ratio to compute")
    return float(run[key]) / float(floor[key])


def markdown_table(results: list[dict[str, Any]]) -> str:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def spread(values: dict[str, float]) -> str:
        return f"{values['median']:.2f} ({values['min']:.2f}-{values['max']:.2f})"

    lines = [
        "| backend | `bookrec data import` (books.csv + ratings.csv) whole command s "
        "| floor op s | **ratio** (min-max) | target | process / floor process | peak RSS MB |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        whole = r["whole_command"]
        lines.append(
            f"| {r['backend']} | {whole['seconds']['median']:.2f} "
            f"| {whole['floor_op_seconds']['median']:.2f} | **{spread(whole['ratio'])}** "
            f"| <= {whole['target_ratio']:g}: {mark(whole['meets_targets'])} "
            f"| {spread(whole['process_ratio'])} | {whole['peak_rss_mb']['median']:.0f} |"
        )
    lines += [
        "",
        "| backend | rows | floor op s | import op s | op ratio (min-max) "
        f"| target <= {TARGET_OP_RATIO:g} | process ratio (min-max) | import peak RSS MB "
        f"| target <= {TARGET_RSS_MB:g} | re-import op ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in results:
        op_ratio = r["op_ratio"]
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['floor_op_seconds']['median']:.2f} "
            f"| {r['import_op_seconds']['median']:.2f} "
            f"| **{op_ratio['median']:.2f}** ({op_ratio['min']:.2f}-{op_ratio['max']:.2f}) "
            f"| {mark(r['meets_targets']['op_ratio'])} "
            f"| {spread(r['process_ratio'])} "
            f"| {r['import_peak_rss_mb']['median']:.0f} "
            f"| {mark(r['meets_targets']['import_peak_rss'])} "
            f"| {r['reimport_op_ratio']['median']:.2f} |"
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
            bench.user_dir = bench.user_directory()

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
        "targets": {"op_ratio_max": TARGET_OP_RATIO, "import_peak_rss_mb_max": TARGET_RSS_MB},
        "machine": info,
        "synth_seconds": synth_seconds,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")

    print(markdown_table(results))
    print()
    outside = "; ".join(
        f"{r['backend']}: import {r['import_outside_op_seconds']['median']:.2f} s, "
        f"floor {r['floor_outside_op_seconds']['median']:.2f} s"
        for r in results
    )
    print(
        "op ratio (headline) = import's reported `seconds` / floor's own operation seconds; "
        "process ratio = whole-process wall / whole-process wall (includes start-up); "
        f"both per repeat, median of {args.repeats} (min-max). "
        f"Targets: op ratio <= {TARGET_OP_RATIO:g}, import peak RSS <= {TARGET_RSS_MB:g} MB. "
        f"Process time outside the operation (start-up, set-up, exit), median: {outside}. "
        f"{info['cpu_model']}, {info['nproc']} CPUs, PostgreSQL {info['postgresql']}, "
        f"SQLite {info['sqlite']}, commit {info['git_commit']}."
    )
    print(f"raw numbers: {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.import_bench",
        description="Import cost of goodbooks-scale ratings, as ratios to a bulk-load floor.",
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
