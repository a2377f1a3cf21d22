"""Training and batch-serving benchmark: `bookrec train` and `bookrec recommend --batch`.

What is measured
----------------
Set-up (not timed): a fresh var directory (SQLite database + model registry), `bookrec db
upgrade`, the bundled catalog (`src/bookrec/demo/goodbooks-10k`) imported, synthetic
goodbooks-scale ratings generated (`bookrec data synth --out WORK/synth`: about 5.98M ratings by
53k readers by default) and imported (`bookrec data import WORK/synth`). Every timed step then
runs as its own subprocess, timed from the fork to the reaping of the child (so interpreter
start-up and imports count), with the child's own peak RSS from os.wait4.

1. ALS end to end vs bare `implicit`. For each repeat, back to back:

   * train: `bookrec train --algo als --factors 64 --iterations 15 --json`. It reports
     `timings_s` {load, fit, total}: load = reading every rating and the catalog out of the
     database, fit = building the confidence matrix and factorising, total = load + fit +
     fitting the popularity fallbacks + saving and registering the version.
   * floor: `python -m benchmarks.train_bench --floor-als --csv WORK/synth/ratings.csv`, which
     reads the same ratings with pyarrow and builds the users x items CSR (float32, every
     rating 1.0) untimed, then times only a bare
     `implicit.als.AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15,
     alpha=2.0, random_state=1).fit(X, show_progress=False)` inside
     `threadpoolctl.threadpool_limits(1, "blas")` (bookrec fits the same model: binary
     weighting, confidence 2.0, BLAS on one thread, implicit's own threads on every core).

   Headline ratio = train's reported `timings_s.total` / floor's fit seconds, pair by pair
   (a train and a floor run back to back see the same machine load). Target <= 2.0. The
   whole-process ratio (train process wall / floor process wall) is reported next to it.

2. EASE: `bookrec train --algo ease --json` on the same database, per repeat: its reported
   fit seconds and total, the process wall, and the peak RSS of the whole train process
   (which also fits the popularity fallbacks). Targets: fit <= 30 s, peak RSS <= 1536 MB.

3. Batch recommendations for every reader: the default model is trained once
   (`bookrec train --json`, no --algo: its algorithm and timings are recorded; `--skip-default`
   skips it and the batch then uses the model that is active, the last ALS one). A USERS.csv
   holding every user_id of the synthetic ratings is written, and per repeat
   `bookrec recommend --batch USERS.csv --k 10 --out WORK/recs.csv` is timed (process wall,
   peak RSS); the output must hold exactly 10 rows for each reader. Target <= 60 s. The same
   batch is then timed with the last EASE model of part 2 active (trained after the default
   model, so it is the active one), for comparison.

Parts run in the order 1, 3, 2, then the EASE batch, so that the EASE batch uses the model the
last EASE training registered. Missing a target is reported, not an error: the exit code is 0
whenever every step ran (1 if a step failed; the JSON and table still show what was measured).

    python -m benchmarks.train_bench                                           # full size
    python -m benchmarks.train_bench --readers 3000 --ratings 300000 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.common import Measured

# The floor subprocess runs this module too: module-level imports stay in the standard library
# so that the floor pays only for pyarrow, numpy, scipy, implicit and threadpoolctl.

ALS_FACTORS = 64
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.05
ALS_ALPHA = 2.0
ALS_SEED = 1
K = 10

TARGET_ALS_RATIO = 2.0
TARGET_EASE_FIT_S = 30.0
TARGET_EASE_RSS_MB = 1536.0
TARGET_BATCH_S = 60.0


# --- the floor (runs in its own subprocess) -----------------------------------------------------


def _process_age() -> float | None:
    """Wall seconds since this process was started (kernel start time, 1/CLK_TCK resolution)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # fields 3.. of proc(5)
        start_ticks = int(fields[19])  # field 22: starttime, clock ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def floor_als(csv_path: Path) -> dict[str, Any]:
    """Bare implicit ALS on the ratings CSV: only `.fit` is timed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares  # type: ignore[import-untyped]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    started = time.perf_counter()
    table = pacsv.read_csv(
        csv_path,
        convert_options=pacsv.ConvertOptions(
            include_columns=["user_id", "book_id"],
            column_types={"user_id": pa.int64(), "book_id": pa.int64()},
        ),
    )
    user_ids, users = np.unique(table.column("user_id").to_numpy(), return_inverse=True)
    book_ids, items = np.unique(table.column("book_id").to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)),
        shape=(len(user_ids), len(book_ids)),
        dtype=np.float32,
    )
    matrix.data.fill(1.0)  # binary, even if a pair were rated twice
    prepare_seconds = time.perf_counter() - started

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=ALS_FACTORS,
            regularization=ALS_REGULARIZATION,
            iterations=ALS_ITERATIONS,
            alpha=ALS_ALPHA,
            random_state=ALS_SEED,
        )
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_seconds = time.perf_counter() - started
    return {
        "fit_seconds": fit_seconds,
        "process_seconds": _process_age(),
        "prepare_seconds": prepare_seconds,
        "ratings": int(matrix.nnz),
        "readers": int(matrix.shape[0]),
        "books": int(matrix.shape[1]),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
    }


# --- the benchmark ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """One benchmark invocation: the work directory, its database and the measured runs."""

    def __init__(self, workdir: Path) -> None:
        from benchmarks.common import ROOT

        self.workdir = workdir
        self.var_dir = workdir / "var"
        self.synth_dir = workdir / "synth"
        self.csv_path = self.synth_dir / "ratings.csv"
        self.users_csv = workdir / "USERS.csv"
        self.recs_csv = workdir / "recs.csv"
        self.catalog = ROOT / "src" / "bookrec" / "demo" / "goodbooks-10k"
        self.logs = workdir / "logs"
        self.bookrec = str(Path(sys.executable).parent / "bookrec")
        env = dict(os.environ)
        # Subprocesses run in the work directory, so a developer's .env in the project root
        # cannot change what is measured; PYTHONPATH lets the floor find `benchmarks`.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        # An empty DATABASE_URL means SQLite under BOOKREC_VAR_DIR (and overrides any .env).
        env["DATABASE_URL"] = ""
        env["BOOKREC_VAR_DIR"] = str(self.var_dir)
        self.env = env

    # -- running ---------------------------------------------------------------------------------
    def _checked(self, argv: list[str]) -> float:
        from benchmarks.common import run_checked

        started = time.perf_counter()
        run_checked(argv, env=self.env, cwd=self.workdir)
        return time.perf_counter() - started

    def _measure(self, argv: list[str]) -> tuple[Measured, list[float]]:
        from benchmarks.common import run_measured

        load = list(os.getloadavg())
        return run_measured(argv, env=self.env, cwd=self.workdir, logs=self.logs).check(), load

    def setup(self, readers: int | None, ratings: int | None) -> dict[str, Any]:
        """Fresh database with the catalog and the synthetic ratings (not timed as results)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pacsv

        seconds: dict[str, float] = {}
        seconds["db_upgrade"] = self._checked([self.bookrec, "db", "upgrade"])
        seconds["import_catalog"] = self._checked(
            [self.bookrec, "data", "import", str(self.catalog)]
        )
        synth = [self.bookrec, "data", "synth", "--out", str(self.synth_dir)]
        if readers is not None:
            synth += ["--readers", str(readers)]
        if ratings is not None:
            synth += ["--ratings", str(ratings)]
        seconds["synth"] = self._checked(synth)
        seconds["import_ratings"] = self._checked(
            [self.bookrec, "data", "import", str(self.synth_dir)]
        )
        table = pacsv.read_csv(
            self.csv_path,
            convert_options=pacsv.ConvertOptions(
                include_columns=["user_id"], column_types={"user_id": pa.int64()}
            ),
        )
        users = np.unique(table.column("user_id").to_numpy())
        with self.users_csv.open("w") as handle:
            handle.write("user_id\n")
            handle.writelines(f"{int(u)}\n" for u in users)
        log(
            f"set-up: {table.num_rows:,} ratings by {len(users):,} readers "
            + ", ".join(f"{name} {s:.1f}s" for name, s in seconds.items())
        )
        return {"seconds": seconds, "ratings": int(table.num_rows), "readers": len(users)}

    def train(self, algo: str | None, extra: list[str] | None = None) -> dict[str, Any]:
        argv = [self.bookrec, "train", *(["--algo", algo] if algo else []), *(extra or [])]
        measured, load = self._measure([*argv, "--json"])
        report = measured.json_report()
        timings = {key: float(value) for key, value in report["timings"].items()}
        return {
            "argv": list(measured.argv),
            "algo": report.get("algo"),
            "version": report.get("version"),
            "params": report.get("params"),
            "data": report.get("data"),
            "timings_s": timings,
            "process_seconds": measured.seconds,
            "outside_total_seconds": measured.seconds - timings["total"],
            "peak_rss_mb": measured.peak_rss_mb,
            "loadavg_before": load,
        }

    def floor(self) -> dict[str, Any]:
        argv = [sys.executable, "-m", "benchmarks.train_bench", "--floor-als"]
        measured, load = self._measure([*argv, "--csv", str(self.csv_path)])
        report = measured.json_report()
        return report | {
            "process_seconds_inside": report.get("process_seconds"),
            "process_seconds": measured.seconds,  # the parent's fork-to-reap wall clock
            "peak_rss_mb": measured.peak_rss_mb,
            "loadavg_before": load,
        }

    def batch(self, expected_readers: int) -> dict[str, Any]:
        self.recs_csv.unlink(missing_ok=True)
        argv = [self.bookrec, "recommend", "--batch", str(self.users_csv), "--k", str(K)]
        measured, load = self._measure([*argv, "--out", str(self.recs_csv)])
        return {
            "argv": list(measured.argv),
            "process_seconds": measured.seconds,
            "peak_rss_mb": measured.peak_rss_mb,
            "loadavg_before": load,
            "check": self.check_recs(expected_readers),
        }

    def check_recs(self, expected_readers: int) -> dict[str, Any]:
        """Exactly K rows for every reader of USERS.csv, and no one else."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pacsv

        recs = pacsv.read_csv(
            self.recs_csv,
            convert_options=pacsv.ConvertOptions(column_types={"user_id": pa.int64()}),
        )
        users, counts = np.unique(recs.column("user_id").to_numpy(), return_counts=True)
        wanted = pacsv.read_csv(self.users_csv).column("user_id").to_numpy()
        missing = len(np.setdiff1d(wanted, users))
        extra = len(np.setdiff1d(users, wanted))
        not_k = int((counts != K).sum())
        return {
            "rows": int(recs.num_rows),
            "readers_in_output": len(users),
            "readers_expected": expected_readers,
            "readers_missing": missing,
            "readers_unexpected": extra,
            "readers_without_k_rows": not_k,
            "ok": missing == 0 and extra == 0 and not_k == 0 and len(users) == expected_readers,
        }


def _summaries(runs: list[dict[str, Any]], paths: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    from benchmarks.common import summary

    def pick(run: dict[str, Any], path: tuple[str, ...]) -> float:
        value: Any = run
        for key in path:
            value = value[key]
        return float(value)

    return {name: summary([pick(run, path) for run in runs]) for name, path in paths.items()}


def part_als(bench: Bench, repeats: int) -> dict[str, Any]:
    from benchmarks.common import BenchmarkError

    runs: list[dict[str, Any]] = []
    extra = ["--factors", str(ALS_FACTORS), "--iterations", str(ALS_ITERATIONS)]
    for repeat in range(1, repeats + 1):
        train = bench.train("als", extra)
        floor = bench.floor()
        if floor["fit_seconds"] <= 0 or floor["process_seconds"] <= 0:
            raise BenchmarkError(f"floor reported {floor!r}: no ratio to compute")
        run = {
            "repeat": repeat,
            "train": train,
            "floor": floor,
            "ratio_total_to_floor_fit": train["timings_s"]["total"] / floor["fit_seconds"],
            "ratio_fit_to_floor_fit": train["timings_s"]["fit"] / floor["fit_seconds"],
            "ratio_process": train["process_seconds"] / floor["process_seconds"],
        }
        runs.append(run)
        t = train["timings_s"]
        log(
            f"als {repeat}/{repeats}: train total {t['total']:.2f}s (load {t['load']:.2f}, "
            f"fit {t['fit']:.2f}; process {train['process_seconds']:.2f}s, "
            f"{train['peak_rss_mb']:.0f} MB), floor fit {floor['fit_seconds']:.2f}s "
            f"(process {floor['process_seconds']:.2f}s): ratio "
            f"{run['ratio_total_to_floor_fit']:.2f}, process ratio {run['ratio_process']:.2f}"
        )
        if train["data"] and train["data"].get("ratings") != floor["ratings"]:
            log(f"  note: train saw {train['data']} , floor {floor['ratings']} ratings")
    return {
        "summary": _summaries(
            runs,
            {
                "ratio_total_to_floor_fit": ("ratio_total_to_floor_fit",),
                "ratio_fit_to_floor_fit": ("ratio_fit_to_floor_fit",),
                "ratio_process": ("ratio_process",),
                "train_total_s": ("train", "timings_s", "total"),
                "train_load_s": ("train", "timings_s", "load"),
                "train_fit_s": ("train", "timings_s", "fit"),
                "train_process_s": ("train", "process_seconds"),
                "train_peak_rss_mb": ("train", "peak_rss_mb"),
                "floor_fit_s": ("floor", "fit_seconds"),
                "floor_process_s": ("floor", "process_seconds"),
                "floor_peak_rss_mb": ("floor", "peak_rss_mb"),
            },
        ),
        "runs": runs,
    }


def part_ease(bench: Bench, repeats: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for repeat in range(1, repeats + 1):
        train = bench.train("ease")
        runs.append({"repeat": repeat, "train": train})
        t = train["timings_s"]
        log(
            f"ease {repeat}/{repeats}: fit {t['fit']:.2f}s, total {t['total']:.2f}s "
            f"(load {t['load']:.2f}), process {train['process_seconds']:.2f}s, "
            f"peak {train['peak_rss_mb']:.0f} MB"
        )
    return {
        "summary": _summaries(
            runs,
            {
                "fit_s": ("train", "timings_s", "fit"),
                "total_s": ("train", "timings_s", "total"),
                "load_s": ("train", "timings_s", "load"),
                "process_s": ("train", "process_seconds"),
                "peak_rss_mb": ("train", "peak_rss_mb"),
            },
        ),
        "runs": runs,
    }


def part_batch(bench: Bench, repeats: int, kind: str, label: str, readers: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for repeat in range(1, repeats + 1):
        run = bench.batch(readers) | {"repeat": repeat}
        runs.append(run)
        check = run["check"]
        log(
            f"batch [{label}] {repeat}/{repeats}: {run['process_seconds']:.2f}s, "
            f"{run['peak_rss_mb']:.0f} MB; {check['rows']:,} rows for "
            f"{check['readers_in_output']:,}/{readers:,} readers, check "
            f"{'ok' if check['ok'] else 'FAILED: ' + json.dumps(check)}"
        )
    return {
        "kind": kind,
        "model": label,
        "summary": _summaries(
            runs, {"process_s": ("process_seconds",), "peak_rss_mb": ("peak_rss_mb",)}
        ),
        "all_checks_ok": all(run["check"]["ok"] for run in runs),
        "runs": runs,
    }


def _active_algo(bench: Bench) -> str:
    from benchmarks.common import BenchmarkError

    listed = subprocess.run(
        [bench.bookrec, "models", "list", "--json"],
        env=bench.env,
        cwd=bench.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        versions = json.loads(listed.stdout)
        active = next(v for v in versions if v["status"] == "active")
    except (ValueError, StopIteration) as exc:
        raise BenchmarkError(f"no active model to batch with: {exc} {listed.stderr}") from None
    return f"{active['algo']} (version {active['version']})"


# --- reporting ----------------------------------------------------------------------------------


def markdown_table(document: dict[str, Any]) -> str:
    rows: list[tuple[str, dict[str, float] | None, str, bool | None]] = []

    def add(
        metric: str, values: dict[str, float] | None, target: float | None = None, unit: str = ""
    ) -> None:
        if values is None:
            rows.append((metric, None, "", None))
            return
        met = None if target is None else values["median"] <= target
        rows.append((metric, values, f"<= {target:g}{unit}" if target is not None else "", met))

    als = document.get("als")
    if als:
        s = als["summary"]
        add(
            "**ALS train total / floor fit (ratio)**",
            s["ratio_total_to_floor_fit"],
            TARGET_ALS_RATIO,
        )
        add("ALS whole-process ratio (train / floor)", s["ratio_process"])
        add("ALS train fit / floor fit (ratio)", s["ratio_fit_to_floor_fit"])
        add("ALS train total s", s["train_total_s"])
        add("ALS train load s", s["train_load_s"])
        add("ALS train fit s", s["train_fit_s"])
        add("ALS train process s", s["train_process_s"])
        add("ALS train peak RSS MB", s["train_peak_rss_mb"])
        add("floor (bare implicit) fit s", s["floor_fit_s"])
        add("floor process s", s["floor_process_s"])
    ease = document.get("ease")
    if ease:
        s = ease["summary"]
        add("**EASE fit s**", s["fit_s"], TARGET_EASE_FIT_S, " s")
        add("EASE train total s", s["total_s"])
        add("EASE train process s", s["process_s"])
        add("**EASE train peak RSS MB**", s["peak_rss_mb"], TARGET_EASE_RSS_MB, " MB")
    default = document.get("default_train")
    if default:
        one = {k: default[k] for k in ("process_seconds", "peak_rss_mb")}
        algo = default["algo"]
        t = default["timings_s"]
        add(f"default model ({algo}) train total s", _single(t["total"]))
        add(f"default model ({algo}) train load s", _single(t["load"]))
        add(f"default model ({algo}) train fit s", _single(t["fit"]))
        add(f"default model ({algo}) train process s", _single(one["process_seconds"]))
        add(f"default model ({algo}) train peak RSS MB", _single(one["peak_rss_mb"]))
    for batch in document.get("batches", []):
        s = batch["summary"]
        checked = "10/reader ok" if batch["all_checks_ok"] else "10/reader CHECK FAILED"
        add(f"**batch recs, {batch['model']}** s ({checked})", s["process_s"], TARGET_BATCH_S, " s")
        add(f"batch recs, {batch['model']} peak RSS MB", s["peak_rss_mb"])

    lines = ["| metric | median | min–max | target | met? |", "|---|---:|---:|---|---|"]
    for metric, values, target, met in rows:
        if values is None:
            lines.append(f"| {metric} | n/a | | {target} | |")
            continue
        mark = "" if met is None else ("yes" if met else "**NO**")
        lines.append(
            f"| {metric} | {values['median']:.2f} | {values['min']:.2f}–{values['max']:.2f} "
            f"| {target} | {mark} |"
        )
    return "\n".join(lines)


def _single(value: float) -> dict[str, float]:
    return {"median": value, "min": value, "max": value}


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind through the finally block that removes the workdir


def benchmark(args: argparse.Namespace) -> int:
    from benchmarks.common import BenchmarkError, machine_info

    signal.signal(signal.SIGTERM, _terminate)
    info = machine_info(None)
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bookrec-train-bench-")) if own_workdir else args.workdir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if not own_workdir and any(workdir.iterdir()):
        raise SystemExit(f"--workdir {workdir} is not empty: the benchmark needs a fresh one")
    bench = Bench(workdir)
    document: dict[str, Any] = {
        "benchmark": "train",
        "command": " ".join(["python", "-m", "benchmarks.train_bench", *sys.argv[1:]]),
        "settings": {
            "readers": args.readers,
            "ratings": args.ratings,
            "repeats": args.repeats,
            "skip_default": args.skip_default,
            "workdir": str(workdir) if not own_workdir else None,
            "als": {
                "factors": ALS_FACTORS,
                "iterations": ALS_ITERATIONS,
                "regularization": ALS_REGULARIZATION,
                "alpha": ALS_ALPHA,
                "random_state": ALS_SEED,
            },
            "k": K,
        },
        "targets": {
            "als_total_to_floor_fit_ratio_max": TARGET_ALS_RATIO,
            "ease_fit_s_max": TARGET_EASE_FIT_S,
            "ease_peak_rss_mb_max": TARGET_EASE_RSS_MB,
            "batch_s_max": TARGET_BATCH_S,
        },
        "machine": info,
        "errors": {},
        "batches": [],
    }
    errors: dict[str, str] = document["errors"]

    def attempt(name: str, step: Any) -> Any:
        try:
            return step()
        except BenchmarkError as exc:
            log(f"{name} failed: {exc}")
            errors[name] = str(exc)
            return None

    started = time.perf_counter()
    try:
        setup = attempt("setup", lambda: bench.setup(args.readers, args.ratings))
        if setup is not None:
            document["setup"] = setup
            readers = int(setup["readers"])
            document["als"] = attempt("als", lambda: part_als(bench, args.repeats))
            if not args.skip_default:
                document["default_train"] = attempt("default_train", lambda: bench.train(None))
                default = document["default_train"]
                if default is not None:
                    t = default["timings_s"]
                    log(
                        f"default model: {default['algo']} version {default['version']}, total "
                        f"{t['total']:.1f}s (load {t['load']:.1f}, fit {t['fit']:.1f}), process "
                        f"{default['process_seconds']:.1f}s, {default['peak_rss_mb']:.0f} MB"
                    )
            label = attempt("active_model", lambda: _active_algo(bench))
            if label is not None:
                if args.skip_default:
                    label += ", default training skipped"
                elif document["default_train"] is None:
                    label += ", default training FAILED"
                batch = attempt(
                    "batch_default",
                    lambda: part_batch(bench, args.repeats, "default", label, readers),
                )
                if batch is not None:
                    document["batches"].append(batch)
            document["ease"] = attempt("ease", lambda: part_ease(bench, args.repeats))
            if document["ease"] is not None:
                label = attempt("active_model_ease", lambda: _active_algo(bench))
                if label is not None:
                    batch = attempt(
                        "batch_ease",
                        lambda: part_batch(bench, args.repeats, "ease", label, readers),
                    )
                    if batch is not None:
                        document["batches"].append(batch)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    info["loadavg_at_end"] = list(os.getloadavg())
    document["wall_seconds"] = time.perf_counter() - started
    document["meets_targets"] = _meets(document)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")

    print(markdown_table(document))
    print()
    print(
        "ALS ratio (headline) = `bookrec train --algo als` reported timings_s.total (load from "
        "the DB + fit + fallbacks + save) / bare implicit fit seconds, per back-to-back pair; "
        "whole-process ratio = process wall / process wall (includes start-up). EASE and batch "
        "seconds: see the metric names (batch = whole `bookrec recommend --batch` process). "
        f"Median of {args.repeats} (min–max); the default-model training ran once. "
        f"{info['cpu_model']}, {info['nproc']} CPUs, SQLite {info['sqlite']}, load average "
        f"{_loads(info['loadavg_at_start'])} at start, {_loads(info['loadavg_at_end'])} at end, "
        f"commit {info['git_commit']}."
    )
    if errors:
        print(f"FAILED steps: {', '.join(errors)} (see {args.out} and the log above)")
    print(f"raw numbers: {args.out}")
    return 1 if errors else 0


def _loads(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _meets(document: dict[str, Any]) -> dict[str, bool | None]:
    def median(part: str, key: str) -> float | None:
        block = document.get(part)
        return None if not block else float(block["summary"][key]["median"])

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    batches = document.get("batches", [])
    default_batch = next((b for b in batches if b["kind"] == "default"), None)
    return {
        "als_ratio": at_most(median("als", "ratio_total_to_floor_fit"), TARGET_ALS_RATIO),
        "ease_fit": at_most(median("ease", "fit_s"), TARGET_EASE_FIT_S),
        "ease_peak_rss": at_most(median("ease", "peak_rss_mb"), TARGET_EASE_RSS_MB),
        "batch_default": None
        if default_batch is None
        else bool(default_batch["all_checks_ok"])
        and default_batch["summary"]["process_s"]["median"] <= TARGET_BATCH_S,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_bench",
        description="Training (ALS vs bare implicit, EASE) and batch-recommendation benchmark.",
    )
    parser.add_argument("--readers", type=int, help="synthetic readers (default: bookrec's)")
    parser.add_argument("--ratings", type=int, help="about how many ratings (default: bookrec's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measured step")
    parser.add_argument(
        "--out", type=Path, default=here / "results" / "train.json", help="JSON results"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep scratch files here (default: a temp dir, removed)"
    )
    parser.add_argument(
        "--skip-default",
        action="store_true",
        help="do not train the default model (the batch then uses the active ALS model)",
    )
    floor = parser.add_argument_group("floor (internal: one bare implicit ALS fit)")
    floor.add_argument("--floor-als", action="store_true", help=argparse.SUPPRESS)
    floor.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_als and args.csv is None:
        parser.error("--floor-als needs --csv")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor_als:
        print(json.dumps(floor_als(args.csv)), flush=True)
        return 0
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
