"""Model switches as API workers live them: under load, after corruption, announced on Redis.

- While requests run against `bookrec serve --workers 2`, activating another version fails
  no request and both workers serve the new version within 2 s.
- A corrupt active artifact at start-up is refused; the previous version serves and
  readiness names it as a fallback.
- With Redis, an activation reaches a worker at once, not at its next poll.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bookrec.accounts import api_keys
from bookrec.api.access import RECOMMENDATIONS_READ
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.importing.importer import import_directory
from bookrec.model_registry.notify import redis_notifier
from bookrec.serving.engine import ServingEngine
from bookrec.training.service import train
from tests.api.conftest import make_settings
from tests.fixtures.redis import REDIS_URL
from tests.fixtures.registry import RegistryView
from tests.jobs.processes import environment, stop, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_versions(
    engine: Engine, database_url: str, small_dataset: Path, tmp_path: Path
) -> tuple[Settings, RegistryView]:
    """Popularity (version 1, active) and ALS (version 2, registered, not active)."""
    settings = make_settings(database_url, tmp_path / "var")
    import_directory(engine, small_dataset)
    registry = RegistryView(engine, settings.models_dir)
    train(engine, registry.registry, "popularity", settings=settings)
    train(
        engine,
        registry.registry,
        "als",
        {"factors": 8, "iterations": 3},
        activate=False,
        force=True,
        settings=settings,
    )
    assert registry.active_number() == 1
    return settings, registry


def test_activation_under_load_fails_nothing_and_reaches_both_workers(
    two_versions: tuple[Settings, RegistryView], engine: Engine, tmp_path: Path
) -> None:
    settings, registry = two_versions
    with Session(engine) as session, session.begin():
        key = api_keys.create(session, "load", [RECOMMENDATIONS_READ], actor_user_id=None).secret
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **environment(settings),
        "BOOKREC_RATE_LIMIT_GENERAL": "1000000/minute",
        "BOOKREC_EMBEDDED_WORKER": "false",
    }
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bookrec.cli.main",
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            "two workers with model 1", lambda: log.read_text().count("model_loaded") >= 2, 60, log
        )
        wait_for("readiness", lambda: _ready(base), 30, log)
        answers: list[tuple[float, int, str]] = []
        stop_load = threading.Event()

        def load(reader: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client:
                while not stop_load.is_set():
                    response = client.get(f"/api/v1/recommendations/users/{reader}?k=5")
                    version = response.headers.get("x-model-version", "?")
                    answers.append((time.monotonic(), response.status_code, version))

        threads = [threading.Thread(target=load, args=(reader,)) for reader in range(1, 7)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        activated_at = time.monotonic()
        registry.activate(2, actor="test")
        time.sleep(6.0)
        stop_load.set()
        for thread in threads:
            thread.join()
    finally:
        stop(server)
    assert answers and all(status == 200 for _, status, _ in answers), {
        status for _, status, _ in answers
    }
    before = [v for t, _, v in answers if t < activated_at]
    # a worker polls every second, then loads the version: allow for a busy 2-core machine
    after = [v for t, _, v in answers if t > activated_at + 4.0]
    assert set(before) == {"1"} and len(after) > 20
    assert set(after) == {"2"}, "a worker still served version 1 four seconds after activation"
    # each worker loaded version 2 (the log holds one model_loaded line per worker and version)
    assert (
        sum("model_loaded" in line and "version=2" in line for line in log.read_text().splitlines())
        == 2
    )


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_corrupt_active_artifact_falls_back_to_the_previous_version(
    two_versions: tuple[Settings, RegistryView],
) -> None:
    settings, registry = two_versions
    registry.activate(2, actor="test")
    factors = next(registry.get(2).path.glob("model/item_factors.npy"))
    data = bytearray(factors.read_bytes())
    data[-1] ^= 0xFF
    factors.write_bytes(bytes(data))

    with TestClient(create_app(settings)) as client:  # a restart
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        model = ready.json()["checks"]["model"]
        assert ready.json()["model_version"] == 1
        assert model["version"] == 1 and model["fallback"] is True
        assert model["refused_versions"] == [2] and model["status"] == "degraded"
        listing = client.get("/api/v1/recommendations/popular", params={"k": 3})
        assert listing.status_code == 200 and listing.headers["x-model-version"] == "1"
    assert registry.get(2).status == "refused"
    assert "checksum" in str(registry.get(2).status_reason)
    assert registry.active_number() == 1


def served(serving: ServingEngine) -> int | None:
    loaded = serving.current()
    return None if loaded is None else loaded.number


def test_redis_announces_an_activation_before_the_next_poll(
    two_versions: tuple[Settings, RegistryView],
    engine: Engine,
    redis_server: redis.Redis,
    redis_prefix: str,
) -> None:
    settings, _ = two_versions
    settings = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": redis_prefix, "model_poll_seconds": 30.0}
    )
    serving = ServingEngine.of(settings, engine)
    serving.start()
    try:
        assert served(serving) == 1
        channel = f"{redis_prefix}models"
        wait_for("the listener", lambda: redis_server.pubsub_numsub(channel)[0][1] > 0, 5)
        announcing = RegistryView(engine, settings.models_dir, redis_notifier(settings))
        activated_at = time.monotonic()
        announcing.activate(2, actor="test")
        wait_for("version 2", lambda: served(serving) == 2, 5)
        assert time.monotonic() - activated_at < 2.0
    finally:
        serving.stop()
