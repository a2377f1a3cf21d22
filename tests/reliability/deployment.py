"""One production-mode deployment on servers of its own, for the reliability suite and the
soak benchmark: a PostgreSQL cluster and a Redis on free ports, the small data set and a
popularity model, `bookrec serve --workers 2` and (optionally) a Celery `bookrec worker`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine, text

from bookrec.accounts.service import Authenticator, register
from bookrec.config import Settings
from bookrec.db.engine import make_engine
from bookrec.db.session import unit_of_work
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.schema.migrate import upgrade
from bookrec.training.service import train
from tests.fixtures.datasets import write_small_dataset
from tests.reliability.services import (
    PostgresCluster,
    RedisServer,
    RunAs,
    free_port,
    postgres_bindir,
    wait_for_port,
)

ADMIN_EMAIL = "keeper@reliability.example.org"
ADMIN_PASSWORD = "an admin passphrase for the faults"
BOOKS = 300  # tests.fixtures.datasets: the small data set's books are 1..300


def missing_binaries() -> str | None:
    """Why a deployment cannot be made here, or None."""
    if postgres_bindir() is None:
        return "no PostgreSQL server binaries (initdb) found"
    if shutil.which("redis-server") is None:
        return "no redis-server binary found"
    return None


@dataclass
class Deployment:
    root: Path
    cluster: PostgresCluster
    redis: RedisServer
    settings: Settings
    env: dict[str, str]
    run_as: RunAs
    base_url: str
    engine: Engine
    serve: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    boot_seconds: float = 0.0

    def start(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        with log.open("ab") as output:
            return subprocess.Popen(
                [
                    *self.run_as.bookrec_prefix(),
                    sys.executable,
                    "-m",
                    "bookrec.cli.main",
                    *arguments,
                ],
                env=self.env,
                cwd=self.root,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_worker(self) -> None:
        self.worker = self.start("worker", "worker")

    def kill_group(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill_group(process)

    def active_version(self) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(
                text("SELECT version FROM model_versions WHERE status = 'active'")
            ).scalar()

    def tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in self.logs
            if log.exists()
        )


@contextmanager
def deploy(*, job_worker: bool) -> Iterator[Deployment]:
    """Set up, start, and finally stop and delete everything."""
    bindir = postgres_bindir()
    assert bindir is not None, missing_binaries()
    run_as = RunAs.pick()
    root = Path(tempfile.mkdtemp(prefix="bookrec-reliability-"))
    root.chmod(0o755)
    cluster = PostgresCluster(root / "pg", run_as, bindir)
    redis = RedisServer(root)
    try:
        cluster.init()
        redis.start()
        with _running(cluster, redis, root, run_as, job_worker) as deployed:
            yield deployed
    finally:
        redis.kill()
        cluster.destroy()
        if os.environ.get("BOOKREC_RELIABILITY_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _running(
    cluster: PostgresCluster, redis: RedisServer, root: Path, run_as: RunAs, job_worker: bool
) -> Iterator[Deployment]:
    """The database filled, then `serve` (and the job worker) started; stopped at the end."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BOOKREC_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        HOME=str(root),
        DATABASE_URL=cluster.url,
        REDIS_URL=redis.url,
        BOOKREC_ENV="production",
        BOOKREC_SECRET_KEY=secrets.token_urlsafe(48),
        BOOKREC_VAR_DIR=str(root / "var"),
        BOOKREC_LOG_FORMAT="json",
        BOOKREC_LOG_LEVEL="WARNING",
        BOOKREC_PORT=str(port),
        BOOKREC_WORKER_THREADS="4",
        BOOKREC_RATE_LIMIT_GENERAL="100000/minute",
        BOOKREC_RATE_LIMIT_GENERAL_ADDRESS="100000/minute",
        BOOKREC_RATE_LIMIT_REGISTER_IP="1000/minute",
        BOOKREC_RATE_LIMIT_LOGIN_IP="1000/minute",
        BOOKREC_JOB_LEASE_SECONDS="6",
        BOOKREC_JOB_HEARTBEAT_SECONDS="1",
        BOOKREC_REDIS_PREFIX=f"reliability-{secrets.token_hex(4)}:",
    )
    settings = Settings(
        DATABASE_URL=cluster.url,
        BOOKREC_VAR_DIR=root / "var",
        BOOKREC_ENV="test",
        BOOKREC_ARGON2_TIME_COST=2,
        BOOKREC_ARGON2_MEMORY_KIB=19 * 1024,
        BOOKREC_ARGON2_PARALLELISM=1,
    )
    # everything the processes start from, made here (faster than one command each)
    upgrade(cluster.url)
    engine = make_engine(cluster.url)
    data = write_small_dataset(root / "data")
    import_directory(engine, data)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    with unit_of_work(engine) as session:
        register(session, Authenticator.of(settings), ADMIN_EMAIL, ADMIN_PASSWORD, role="admin")
    deployed = Deployment(
        root, cluster, redis, settings, env, run_as, f"http://127.0.0.1:{port}", engine
    )
    try:
        deployed.serve = deployed.start("serve", "serve", "--workers", "2")
        if job_worker:
            deployed.start_worker()
        booting = time.monotonic()
        wait_for_port(port, 120)
        wait(lambda: ready(deployed.base_url), 120, "the API to be ready", deployed)
        deployed.boot_seconds = round(time.monotonic() - booting, 1)
        yield deployed
    finally:
        deployed.stop(deployed.serve)
        deployed.stop(deployed.worker)
        engine.dispose()


def ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait(check: Callable[[], Any], timeout: float, what: str, deployed: Deployment) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{deployed.tail()}")


def worker_pids(serve: subprocess.Popen[bytes]) -> set[int]:
    """uvicorn's worker processes (not multiprocessing's resource tracker)."""
    return {
        child.pid
        for child in psutil.Process(serve.pid).children()
        if child.is_running() and "resource_tracker" not in " ".join(child.cmdline())
    }
