"""Servers the reliability suite owns: a PostgreSQL cluster and a Redis of its own, on free
ports, that it can restart, stop and kill without touching anyone else's.

Run as root, the cluster runs as the `postgres` OS user (PostgreSQL refuses root), and the
bookrec processes as root without the capabilities that bypass file permissions (`setpriv`),
so that a read-only model directory is read-only to them as it would be to a service user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_USER = "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian's layout, then PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


#: What lets root write where file permissions say no: dropped for the bookrec processes.
_PERMISSION_BYPASS = "-dac_override,-dac_read_search,-fowner"


@dataclass(frozen=True)
class RunAs:
    """Who the servers and the bookrec processes run as: this process's user, or, for root,
    the `postgres` user (the cluster) and root bound by file permissions (bookrec)."""

    root: bool

    @classmethod
    def pick(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls(False)
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError as exc:
            raise RuntimeError(
                f"running as root needs the OS user {SERVICE_USER!r} (apt-get install postgresql)"
            ) from exc
        if shutil.which("setpriv") is None:
            raise RuntimeError("running as root needs setpriv (util-linux)")
        return cls(True)

    def give_to_postgres(self, path: Path) -> None:
        if self.root:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def postgres_args(self) -> dict[str, Any]:
        """`subprocess` arguments running a PostgreSQL binary as its user."""
        if not self.root:
            return {}
        entry = pwd.getpwnam(SERVICE_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def bookrec_prefix(self) -> list[str]:
        """What goes before a bookrec command line (root: without the permission bypass)."""
        return ["setpriv", "--bounding-set", _PERMISSION_BYPASS, "--"] if self.root else []


class PostgresCluster:
    """`initdb` in a directory of its own; started, restarted and stopped with `pg_ctl`."""

    def __init__(self, root: Path, run_as: RunAs, bindir: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.run_as = run_as
        self.bindir = bindir

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/bookrec"

    def _run(self, *arguments: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bindir / arguments[0]), *arguments[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.root,
            **self.run_as.postgres_args(),
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_as.give_to_postgres(self.root)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "bookrec")

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=60"
        )
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", options, *extra,
        )  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")


class RedisServer:
    """A `redis-server` without persistence on a free port; can be killed and started again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                    *("--appendonly", "no", "--dir", str(self.root)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, 20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None
