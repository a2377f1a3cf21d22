"""Real `bookrec` processes for tests: the environment they read, start, wait, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bookrec.config import Settings

T = TypeVar("T")


def environment(settings: Settings) -> dict[str, str]:
    """What a `bookrec` subprocess needs to see the same database, var dir and services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BOOKREC_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        DATABASE_URL=settings.database_url or "",
        BOOKREC_VAR_DIR=str(settings.var_dir),
        BOOKREC_ENV="test",
        BOOKREC_LOG_FORMAT="console",
        BOOKREC_JOB_LEASE_SECONDS=str(settings.job_lease_seconds),
        BOOKREC_JOB_HEARTBEAT_SECONDS=str(settings.job_heartbeat_seconds),
        BOOKREC_JOB_POLL_SECONDS="0.2",
        BOOKREC_REDIS_PREFIX=settings.redis_prefix,
        COLUMNS="200",
    )
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


def start(settings: Settings, *arguments: str, log: Path) -> subprocess.Popen[bytes]:
    """`bookrec ARGUMENTS…` in its own process group, output to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bookrec.cli.main", *arguments],
            env=environment(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL the whole group if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float, log: Path | None = None
) -> T:
    """Poll `check` until it returns something truthy; fail with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    shown = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{shown}")
