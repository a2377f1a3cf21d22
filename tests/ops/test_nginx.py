"""Debian's nginx with the repository's config in front of a real `bookrec serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bookrec.config import Settings
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train
from tests.api.conftest import make_settings
from tests.jobs.processes import wait_for
from tests.ops.servers import DEPLOY, free_port, require_binary, serving

POPULAR = "/api/v1/recommendations/popular"


@contextmanager
def nginx_in_front(app_port: int, directory: Path) -> Iterator[str]:
    """The repo's nginx.conf, its upstream pointed at the app and listening on a free port."""
    binary = require_binary("nginx", "/usr/sbin/nginx")
    port = free_port()
    config = (DEPLOY / "nginx" / "nginx.conf").read_text()
    for old, new in (
        ("server api:8000", f"server 127.0.0.1:{app_port}"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("pid /tmp/nginx.pid;", f"pid {directory}/nginx.pid;"),
        ("/tmp/nginx-", f"{directory}/nginx-"),
    ):
        assert old in config, old
        config = config.replace(old, new)
    path = directory / "nginx.conf"
    path.write_text(config)
    test = subprocess.run(
        [binary, "-t", "-c", str(path)], capture_output=True, text=True, check=False
    )
    assert test.returncode == 0, test.stderr
    log = directory / "nginx.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, "-c", str(path), "-g", "daemon off;"], stdout=output, stderr=output
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("nginx", up, 20, log)
        yield base
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def trained(engine: Engine, database_url: str, small_dataset: Path, tmp_path: Path) -> Settings:
    settings = make_settings(database_url, tmp_path / "var")
    import_directory(engine, small_dataset)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


# the proxy (scrape) path is the same whatever the database: SQLite only, to keep make test short
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_through_nginx_the_client_address_reaches_logs_and_rate_limits(
    trained: Settings, tmp_path: Path
) -> None:
    require_binary("nginx", "/usr/sbin/nginx")
    log = tmp_path / "serve.log"
    with (
        serving(
            trained,
            log,
            workers=1,
            BOOKREC_RATE_LIMIT_GENERAL="5/minute",
            FORWARDED_ALLOW_IPS="127.0.0.1",
        ) as server,
        nginx_in_front(server.port, tmp_path) as base,
    ):
        first, second = "203.0.113.7", "198.51.100.9"
        statuses = [
            httpx.get(f"{base}{POPULAR}", headers={"X-Forwarded-For": first}).status_code
            for _ in range(6)
        ]
        other = httpx.get(f"{base}{POPULAR}", headers={"X-Forwarded-For": second})
        # gzip for clients that take it, on JSON answers
        zipped = httpx.get(
            f"{base}/api/v1/books", headers={"X-Forwarded-For": second, "Accept-Encoding": "gzip"}
        )
        # over nginx's body cap (1 MiB, as the app's): refused before the app reads it
        too_big = httpx.post(
            f"{base}/api/v1/auth/register",
            content=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        hidden = httpx.get(f"{base}/metrics")
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    # the app's own limit (5/minute per client) counted the forwarded address, not nginx's
    assert statuses == [200] * 5 + [429]
    assert other.status_code == 200
    assert zipped.status_code == 200 and zipped.headers.get("content-encoding") == "gzip"
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert too_big.json()["status"] == 413
    assert hidden.status_code == 404
    requests = [line for line in lines if line.get("event") == "request"]
    clients = {line["client"] for line in requests}
    assert {first, second} <= clients and "127.0.0.1" not in clients
    # nginx's request id is the app's: one id names the request in both logs
    assert all(len(line["request_id"]) == 32 for line in requests)
    nginx_ids = (tmp_path / "nginx.log").read_text()
    assert requests[0]["request_id"] in nginx_ids
    # the body never reached the app
    assert not any(line.get("route") == "/api/v1/auth/register" for line in requests)
