"""Debian's Prometheus with the repository's prometheus.yml and alert rules, scraping a real
`bookrec serve`; the scraped series read back through Prometheus' HTTP API."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

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


@pytest.fixture
def trained(engine: Engine, database_url: str, small_dataset: Path, tmp_path: Path) -> Settings:
    settings = make_settings(database_url, tmp_path / "var")
    import_directory(engine, small_dataset)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


def query(base: str, expression: str) -> list[dict[str, Any]]:
    try:
        answer = httpx.get(f"{base}/api/v1/query", params={"query": expression}, timeout=5)
    except httpx.HTTPError:
        return []
    if answer.status_code != 200:
        return []
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


# the proxy (scrape) path is the same whatever the database: SQLite only, to keep make test short
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_prometheus_scrapes_the_server_and_loads_the_rules(
    trained: Settings, tmp_path: Path
) -> None:
    binary = require_binary("prometheus")
    config_dir = tmp_path / "prometheus"
    shutil.copytree(DEPLOY / "prometheus", config_dir)
    with serving(trained, tmp_path / "serve.log", workers=2) as server:
        config = (config_dir / "prometheus.yml").read_text()
        for old, new in (
            ('"api:8000"', f'"127.0.0.1:{server.port}"'),
            ("scrape_interval: 15s", "scrape_interval: 1s"),
        ):
            assert old in config, old
            config = config.replace(old, new)
        (config_dir / "prometheus.yml").write_text(config)
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=output,
                stderr=output,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(25):
                assert httpx.get(f"{server.base}{POPULAR}").status_code == 200
            expression = f'sum(bookrec_http_requests_total{{route="{POPULAR}",status="200"}})'
            found = wait_for(
                "the scraped request count",
                lambda: [r for r in query(base, expression) if float(r["value"][1]) == 25],
                180,  # Prometheus starts in seconds, or a minute on a machine under load
                log,
            )
            served = query(base, "bookrec_model_version_served")
            up = query(base, 'up{job="bookrec-api"}')
            rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
        finally:
            process.terminate()
            process.wait(15)
    assert float(found[0]["value"][1]) == 25
    assert len(served) == 2 and {r["value"][1] for r in served} == {"1"}
    assert [r["value"][1] for r in up] == ["1"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"BookrecHighErrorRatio", "BookrecListLatencyHigh", "BookrecApiDown"} <= names
    assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
