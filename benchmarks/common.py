"""Helpers shared by the benchmarks: measured subprocesses, scratch databases, machine info."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
"""The project root (the directory holding pyproject.toml and benchmarks/)."""


class BenchmarkError(RuntimeError):
    """A measured command failed; the message carries its exit code and the end of its stderr."""


@dataclass(frozen=True)
class Measured:
    """One subprocess run: wall-clock seconds, the child's own peak RSS, and its output."""

    argv: tuple[str, ...]
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Measured:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-25:])
            raise BenchmarkError(f"{' '.join(self.argv)} exited with {self.returncode}:\n{tail}")
        return self

    def json_report(self) -> dict[str, Any]:
        """The JSON object the command printed on stdout (the whole of stdout, or its last line).

        `bookrec ... --json` prints one (possibly indented) document; the floor prints one line.
        """
        text = self.stdout.strip()
        candidates = [text]
        if text:
            candidates.append(text.splitlines()[-1])
        for candidate in candidates:
            try:
                report = json.loads(candidate)
            except json.JSONDecodeError:
                continue
            if isinstance(report, dict):
                return report
        raise BenchmarkError(
            f"no JSON report on stdout of {' '.join(self.argv)}: {self.stdout[-500:]!r}"
        )


def run_measured(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, logs: Path) -> Measured:
    """Run `argv`, timing the whole process and reading its peak RSS from os.wait4.

    The clock runs from just before the fork to the reaping of the child, so it includes
    interpreter startup and imports. stdout/stderr go to files under `logs` (not pipes), so
    the child never blocks on a full pipe while we sit in wait4. ru_maxrss from wait4 is that
    child's own peak (KiB on Linux), not that of any grandchildren.
    """
    logs.mkdir(parents=True, exist_ok=True)
    stem = uuid.uuid4().hex[:8]
    out_path, err_path = logs / f"{stem}.out", logs / f"{stem}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=dict(env), cwd=cwd
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): leave no child behind
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    return Measured(
        argv=tuple(argv),
        seconds=seconds,
        peak_rss_mb=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def run_checked(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run an untimed setup step; raise BenchmarkError with its stderr when it fails."""
    result = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-25:])
        raise BenchmarkError(f"{' '.join(argv)} exited with {result.returncode}:\n{tail}")
    return result


class PostgresScratch:
    """Creates `bookrec_bench_<random>` databases and drops every one of them in `close()`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._admin: psycopg.Connection[Any] = psycopg.connect(admin_url, autocommit=True)
        self._created: list[str] = []

    def server_version(self) -> str:
        row = self._admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    def create(self) -> tuple[str, str]:
        """A new empty database: (name, URL)."""
        name = f"bookrec_bench_{uuid.uuid4().hex[:12]}"
        self._admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        return name, url

    def drop(self, name: str) -> None:
        self._admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if name in self._created:
            self._created.remove(name)

    def close(self) -> None:
        """Drop every database this object created and still holds, then disconnect."""
        try:
            for name in list(self._created):
                with contextlib.suppress(psycopg.Error):
                    self.drop(name)
        finally:
            self._admin.close()


@contextlib.contextmanager
def postgres_scratch(admin_url: str) -> Iterator[PostgresScratch]:
    scratch = PostgresScratch(admin_url)
    try:
        yield scratch
    finally:
        scratch.close()


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max (the mean would let one noisy run move the headline)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _total_ram_mb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    return None


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip() or None
    return None


def machine_info(postgres_version: str | None) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "nproc": len(os.sched_getaffinity(0)),
        "total_ram_mb": _total_ram_mb(),
        "loadavg_at_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
    }
