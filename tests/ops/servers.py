"""`bookrec serve` and the Debian daemons (nginx, Prometheus) as real processes for tests.

A daemon's test skips when its binary is absent, unless BOOKREC_REQUIRE_SERVICES=1 (CI, where
`make deploy-tools` installs them), where it fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookrec.config import Settings
from tests.fixtures.database import services_required
from tests.jobs.processes import environment, stop, wait_for

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_binary(name: str, *search: str) -> str:
    """The path of `name` (on PATH or in `search`); skip without it, or fail in CI."""
    found = shutil.which(name) or next((p for p in search if Path(p).is_file()), None)
    if found:
        return found
    message = f"{name} is not installed (make deploy-tools installs it)"
    if services_required():
        pytest.fail(message + " and BOOKREC_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(settings: Settings, log: Path, workers: int = 2, **env: str) -> Iterator[Server]:
    """`bookrec serve --workers N` on a free port, ready (a model loaded), stopped after."""
    port = free_port()
    variables = {
        **environment(settings),
        "BOOKREC_LOG_FORMAT": "json",
        "BOOKREC_RATE_LIMIT_GENERAL": "1000000/minute",
        "BOOKREC_RATE_LIMIT_GENERAL_ADDRESS": "1000000/minute",
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "bookrec.cli.main", "serve"),
                *("--workers", str(workers), "--port", str(port)),
            ],
            env=variables,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            f"{workers} workers with a model",
            lambda: log.read_text(errors="replace").count('"model_loaded"') >= workers,
            180,  # workers import numpy and load the model: slow on a loaded machine
            log,
        )
        wait_for("readiness", lambda: _ready(base), 30, log)
        yield Server(base, port, log, process)
    finally:
        stop(process)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample named `name` in Prometheus' text format: (labels, value)."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
