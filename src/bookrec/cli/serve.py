"""`bookrec serve`: the HTTP API with uvicorn (uvloop + httptools).

In embedded mode (no REDIS_URL) it also starts `bookrec worker --embedded` as a process of
its own (BOOKREC_EMBEDDED_WORKER=false turns that off), so training jobs run and a crash in
training never takes the API down; the worker is stopped when serve exits.

Before any of them starts, the metrics directory (PROMETHEUS_MULTIPROC_DIR, default
VAR_DIR/metrics) is emptied and named in the environment they inherit: every worker's
`/metrics` then sums all of them (`observability.metrics`).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

import typer

from bookrec.cli.common import console, engine, fail, settings, user_errors

#: How long uvicorn's supervisor waits for a worker to answer its ping before killing it as
#: hung. Its default (5 s) kills workers that are only slow to import numpy and the models on
#: a busy machine, in a loop; a really hung worker is still replaced within this time.
WORKER_HEALTHCHECK_SECONDS = 30
#: How long the embedded worker gets to stop (and interrupt a running job) before it is killed.
WORKER_STOP_SECONDS = 15


def start_embedded_worker() -> subprocess.Popen[bytes]:
    """`bookrec worker --embedded` as a child that also exits if this process dies."""
    return subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
        [
            sys.executable,
            *("-m", "bookrec.cli.main", "worker", "--embedded"),
            f"--parent-pid={os.getpid()}",
        ]
    )


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def stop_embedded_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def require_free_port(host: str, port: int) -> None:
    """Fail at once, before anything loads, when `host:port` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} is in use on {host}; set --port or BOOKREC_PORT")
            fail(f"cannot listen on {host}:{port}: {exc.strerror}; set --host or BOOKREC_HOST")


@user_errors
def serve(
    host: str = typer.Option(None, help="Bind address (default BOOKREC_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default BOOKREC_PORT or 8000)"),
    workers: int = typer.Option(
        None, min=1, max=64, help="Worker processes (default BOOKREC_WORKERS or 1)"
    ),
) -> None:
    """Serve the API and its docs (/docs); in embedded mode, run training jobs too."""
    import uvicorn

    config = settings()
    host, port = host or config.host, port or config.port
    require_free_port(host, port)
    engine(config).dispose()  # the database is reachable and initialised
    from bookrec.observability.multiprocess import prepare_multiprocess_dir

    prepare_multiprocess_dir(config.metrics_dir)
    job_worker = None
    if config.redis_url is None and config.embedded_worker:
        job_worker = start_embedded_worker()
        # uvicorn re-raises SIGTERM once it has shut down: exit through `finally` then
        signal.signal(signal.SIGTERM, _exit_on_signal)
        console.print(f"embedded training worker started (pid {job_worker.pid})", highlight=False)
    try:
        uvicorn.run(
            "bookrec.api.server:served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers or config.workers,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=10,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
    finally:
        if job_worker is not None:
            stop_embedded_worker(job_worker)
