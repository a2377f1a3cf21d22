"""Serving benchmark: personal recommendations under load vs the same server's /health/live.

What is measured
----------------
Set-up (not timed): a var directory with the goodbooks-10k catalog, goodbooks-scale synthetic
ratings (`bookrec data demo`: ~53k readers, ~6M ratings) and the default model trained
(`bookrec train`), unless `--var-dir` names one that already has an active model. An API key
with the `recommendations:read` scope is minted in the database.

The server is `bookrec serve --workers 2` (uvicorn, SQLite, no Redis, embedded training worker
off, the general rate limit raised so the load generator is not throttled). wrk runs on the
same machine (`--threads`, `--connections`, `--duration` each run), with a Lua script that
asks `GET /api/v1/recommendations/users/{random user id}?k=10` with the API key and counts
the answers' `X-Cache` header and any non-200 status. Runs, in this order:

floor, cold, floor, warm-up, floor, warm, floor, scored, floor, where
- floor: `GET /health/live` (the same server, middleware and event loop; no auth, no model);
- cold: random readers over all ~53k on a fresh server (caches empty): the activity stamp
  query, then the reader's list as training stored it (`X-Cache: precomputed`), written
  from the book cards' stored JSON;
- warm-up: `explain=true` over the first `--warm-users` user ids for `--warm-up` seconds:
  no precomputed list answers these, so each worker scores them once and caches them;
- warm: random readers among those users, `explain=true`: the stamp query + a cache hit;
- scored: random readers over all ~53k with `explain=true`: the reader's activity is read,
  the catalogue scored, reasons written, per request (`X-Cache: miss`).

Before the cold and the scored runs, the database file and the served version's files are
read once into the OS page cache (`read_into_page_cache`): the caches a cold run starts
without are the service's own, not the operating system's.

Every answer says where it came from (`X-Cache`: hit, precomputed or miss = scored); the
Lua script counts them. "cold" is the headline: random readers of the whole data set on a
fresh server, what a shop's backend asking for its readers sees.

Headline: throughput ratio = recommendations req/s / the mean of the floors measured just
before and just after (the machine is shared: its load moves between runs).
Target >= 0.5 with no errors. Latency p50/p99 from wrk. Memory: every worker process's RSS and
PSS (proportional share: pages the workers share, such as the memory-mapped model, are split
between them) sampled every 0.2 s; target peak RSS <= 500 MB per worker.

    python -m benchmarks.serve_bench                       # sets up its own data and model
    python -m benchmarks.serve_bench --var-dir /tmp/bench7 # reuse a prepared var dir
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import ROOT, machine_info, run_checked

LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + seed)
  key = os.getenv("BOOKREC_BENCH_KEY")
  max_user = tonumber(os.getenv("BOOKREC_BENCH_USERS"))
  query = os.getenv("BOOKREC_BENCH_QUERY")
  hits, precomputed, misses, bad = 0, 0, 0, 0
end
function request()
  local uid = math.random(1, max_user)
  return wrk.format("GET", "/api/v1/recommendations/users/" .. uid .. "?" .. query,
                    {["X-API-Key"] = key})
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
  local source = headers["x-cache"]
  if source == "hit" then hits = hits + 1
  elseif source == "precomputed" then precomputed = precomputed + 1
  else misses = misses + 1 end
end
function done(summary, latency, requests)
  local h, p, m, b = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    h = h + thread:get("hits"); p = p + thread:get("precomputed")
    m = m + thread:get("misses"); b = b + thread:get("bad")
  end
  io.write(string.format("BOOKREC hits=%d precomputed=%d misses=%d bad=%d\n", h, p, m, b))
end
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bookrec_env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL="",
        BOOKREC_VAR_DIR=str(var_dir),
        BOOKREC_LOG_LEVEL="WARNING",
        BOOKREC_EMBEDDED_WORKER="false",
        BOOKREC_RATE_LIMIT_GENERAL="100000/second",
        BOOKREC_RATE_LIMIT_API_KEY="100000/second",
    )
    env.pop("REDIS_URL", None)
    return env


def prepare(var_dir: Path, env: dict[str, str]) -> None:
    """Catalog, synthetic ratings and the default model, unless a model is already active."""
    bookrec = str(Path(sys.executable).parent / "bookrec")
    run_checked([bookrec, "db", "upgrade"], env=env, cwd=var_dir.parent)
    run_checked([bookrec, "data", "demo"], env=env, cwd=var_dir.parent)
    run_checked([bookrec, "train", "--if-missing"], env=env, cwd=var_dir.parent)


def mint_key(env: dict[str, str]) -> tuple[str, int]:
    """An API key for the benchmark, and the number of data set readers."""
    code = (
        "import json, bookrec.schema\n"
        "from sqlalchemy import func, select\n"
        "from sqlalchemy.orm import Session\n"
        "from bookrec.accounts import api_keys\n"
        "from bookrec.readers.models import Reader\n"
        "from bookrec.config import load_settings\n"
        "from bookrec.db.engine import make_engine\n"
        "engine = make_engine(load_settings().sqlalchemy_url)\n"
        "with Session(engine) as session, session.begin():\n"
        "    key = api_keys.create(session, 'serve-bench', ['recommendations:read'],"
        " actor_user_id=None)\n"
        "    readers = session.scalar(select(func.max(Reader.external_id)))\n"
        "print(json.dumps({'key': key.secret, 'readers': readers}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return str(report["key"]), int(report["readers"])


EXPERIMENT_CODE = (
    "import json, sys, time, bookrec.schema\n"
    "from sqlalchemy.orm import Session\n"
    "from bookrec.config import load_settings\n"
    "from bookrec.db.engine import make_engine\n"
    "from bookrec.experiments import service\n"
    "from bookrec.experiments.schemas import ExperimentIn\n"
    "from bookrec.model_registry.registry import ModelRegistry\n"
    "settings = load_settings()\n"
    "engine = make_engine(settings.sqlalchemy_url)\n"
    "registry = ModelRegistry(settings.models_dir)\n"
    "with Session(engine) as session, session.begin():\n"
    "    if sys.argv[1] == 'start':\n"
    "        spec = ExperimentIn(name=f'serve-bench-{time.time_ns()}',"
    " variants=[{'name': 'a'}, {'name': 'b'}])\n"
    "        experiment = service.create(session, spec, registry)\n"
    "        service.start(session, experiment.experiment_id, registry)\n"
    "        print(experiment.experiment_id)\n"
    "    else:\n"
    "        service.stop(session, int(sys.argv[2]))\n"
)


def experiment(env: dict[str, str], *args: str) -> str:
    """Start an A/A experiment on the active model (`start`), or stop one (`stop ID`)."""
    done = subprocess.run(
        [sys.executable, "-c", EXPERIMENT_CODE, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


class Server:
    """`bookrec serve --workers N` and a sampler of its workers' memory."""

    def __init__(self, env: dict[str, str], port: int, workers: int, logs: Path) -> None:
        self.port = port
        self.log_file = (logs / f"serve-{int(time.time())}.log").open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bookrec"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers = workers
        self.peak: dict[int, dict[str, float]] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/health/ready", timeout=2
                ) as answer:
                    if answer.status == 200 and len(self.worker_processes()) >= self.workers:
                        self._sampler.start()
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"bookrec serve exited with {self.process.returncode}")
            time.sleep(0.5)
        raise RuntimeError("bookrec serve was not ready in time")

    def worker_processes(self) -> list[psutil.Process]:
        """uvicorn's worker processes (children running the app, not multiprocessing helpers)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]

    def _sample(self) -> None:
        while not self._stop.is_set():
            for worker in self.worker_processes():
                try:
                    memory = worker.memory_full_info()
                except psutil.Error:
                    continue
                peak = self.peak.setdefault(worker.pid, {"rss_mb": 0.0, "pss_mb": 0.0})
                peak["rss_mb"] = max(peak["rss_mb"], memory.rss / 2**20)
                peak["pss_mb"] = max(peak["pss_mb"], getattr(memory, "pss", 0) / 2**20)
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()


def read_into_page_cache(paths: list[Path]) -> float:
    """Read files once so the OS holds them in its page cache; the seconds it took.

    The runs measure the service, not the disk: on a server the database and the served
    version sit in memory, but this VM pages out file pages idle for a minute (DAMON
    reclaim), and a reader's rows then come from disk, read on the event loop."""
    started = time.perf_counter()
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(1 << 20):
                pass
    return time.perf_counter() - started


def wrk(
    url: str, args: argparse.Namespace, script: Path | None, env: dict[str, str], seconds: int
) -> dict[str, Any]:
    """One wrk run: requests/s, latency percentiles, errors and (with the script) cache hits."""
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        *(["-s", str(script)] if script else []),
        url,
    ]
    load = os.getloadavg()[0]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = {"load_1m": round(load, 2)}
    result["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        found = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            result[f"p{percentile}_ms"] = round(float(found.group(1)) * scale, 3)
    requests = re.search(r"(\d+) requests in", out)
    result["requests"] = int(requests.group(1)) if requests else None
    errors = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = errors.group(1).strip() if errors else "none"
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    cache = re.search(r"BOOKREC hits=(\d+) precomputed=(\d+) misses=(\d+) bad=(\d+)", out)
    if cache:
        hits, precomputed, misses, bad = (int(v) for v in cache.groups())
        answered = max(hits + precomputed + misses, 1)
        result["answered_by"] = {
            "cache": round(hits / answered, 4),
            "precomputed": round(precomputed / answered, 4),
            "scored": round(misses / answered, 4),
        }
        result["non_200"] = bad
    return result


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian) and run again")
    workdir = Path(tempfile.mkdtemp(prefix="bookrec-serve-bench-"))
    var_dir = Path(args.var_dir) if args.var_dir else workdir / "var"
    env = bookrec_env(var_dir)
    logs = workdir / "logs"
    logs.mkdir()
    started = time.perf_counter()
    if not args.var_dir:
        log("setting up: catalog, synthetic ratings, default model (several minutes)")
        var_dir.mkdir()
        prepare(var_dir, env)
    key, readers = mint_key(env)
    running = experiment(env, "start") if args.experiment else None
    if running:
        log(f"experiment {running} (A/A on the active model) is running")
    script = workdir / "users.lua"
    script.write_text(LUA)
    wrk_env = {
        **os.environ,
        "BOOKREC_BENCH_KEY": key,
        "BOOKREC_BENCH_USERS": str(readers),
        "BOOKREC_BENCH_QUERY": "k=10",
    }
    base = f"http://127.0.0.1:{args.port}"
    runs: dict[str, Any] = {}
    server = Server(env, args.port, args.workers, logs)
    try:
        server.wait_ready()
        with urllib.request.urlopen(f"{base}/health/ready") as answer:
            model = json.loads(answer.read())["checks"]["model"]
        log(f"serving model {model['version']} ({model['algo']}); {readers:,} readers")
        live = f"{base}/health/live"
        warm_env = {
            **wrk_env,
            "BOOKREC_BENCH_USERS": str(args.warm_users),
            "BOOKREC_BENCH_QUERY": "k=10&explain=true",
        }
        runs["floor_1"] = wrk(live, args, None, wrk_env, args.duration)
        served = [
            *var_dir.glob("*.sqlite3*"),
            *(var_dir / "models" / str(model["version"])).rglob("*"),
        ]
        served = [path for path in served if path.is_file()]
        log(f"read {len(served)} files into the page cache in {read_into_page_cache(served):.1f} s")
        runs["cold"] = wrk(base, args, script, wrk_env, args.duration)
        runs["floor_2"] = wrk(live, args, None, wrk_env, args.duration)
        runs["warm_up"] = wrk(base, args, script, warm_env, args.warm_up)
        runs["floor_3"] = wrk(live, args, None, wrk_env, args.duration)
        runs["warm"] = wrk(base, args, script, warm_env, args.duration)
        runs["floor_4"] = wrk(live, args, None, wrk_env, args.duration)
        scored_env = {**wrk_env, "BOOKREC_BENCH_QUERY": "k=10&explain=true"}
        read_into_page_cache(served)
        runs["scored"] = wrk(base, args, script, scored_env, args.duration)
        runs["floor_5"] = wrk(live, args, None, wrk_env, args.duration)
        for name, run in runs.items():
            log(f"{name}: {run}")
    finally:
        server.stop()
        if running:
            experiment(env, "stop", running)

    def floor(*names: str) -> float:
        return sum(runs[name]["requests_per_s"] for name in names) / len(names)

    document = {
        "benchmark": "serve",
        "command": " ".join(["python -m benchmarks.serve_bench", *sys.argv[1:]]),
        "machine": machine_info(None),
        "model": model,
        "readers": readers,
        "setup": {
            "workers": args.workers,
            "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s",
            "warm_users": args.warm_users,
            "experiment_running": bool(args.experiment),
        },
        "runs": runs,
        # each run against the mean of the floors measured just before and just after it
        "ratios": {
            "cold": round(runs["cold"]["requests_per_s"] / floor("floor_1", "floor_2"), 3),
            "warm": round(runs["warm"]["requests_per_s"] / floor("floor_3", "floor_4"), 3),
            "scored": round(runs["scored"]["requests_per_s"] / floor("floor_4", "floor_5"), 3),
        },
        "peak_memory_per_worker_mb": {
            str(pid): {k: round(v, 1) for k, v in peak.items()} for pid, peak in server.peak.items()
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    errors = sum(run.get("non_200", 0) for run in runs.values()) + sum(
        runs[name]["non_2xx"] for name in runs
    )
    document["errors"] = errors
    worst_rss = max((p["rss_mb"] for p in server.peak.values()), default=0.0)
    document["meets"] = {
        "throughput_ratio_cold_>=_0.5": document["ratios"]["cold"] >= 0.5,
        "throughput_ratio_warm_>=_0.5": document["ratios"]["warm"] >= 0.5,
        "no_errors": errors == 0,
        "rss_per_worker_<=_500_mb": worst_rss <= 500,
    }
    if not args.keep and not args.var_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return document


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--var-dir", help="a prepared BOOKREC_VAR_DIR with an active model")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--warm-users", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=20, help="seconds of the warm-up pass")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--experiment",
        action="store_true",
        help="run with an A/A experiment on the personal lists (assignment, variant labels and "
        "server-logged impressions on every list)",
    )
    parser.add_argument("--json", help="also write the result document here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document = benchmark(args)
    text = json.dumps(document, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if document["errors"] == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
