"""`GET /metrics`: every worker's counts in every scrape, bounded labels, restricted access."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train
from tests.api.conftest import make_settings
from tests.fixtures.accounts import signed_in
from tests.jobs.processes import wait_for
from tests.ops.servers import free_port, samples, serving

POPULAR = "/api/v1/recommendations/popular"


@pytest.fixture
def trained(engine: Engine, database_url: str, small_dataset: Path, tmp_path: Path) -> Settings:
    settings = make_settings(database_url, tmp_path / "var")
    import_directory(engine, small_dataset)
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


def popular_count(text: str) -> float:
    return sum(
        value
        for labels, value in samples(text, "bookrec_http_requests_total")
        if labels == {"route": POPULAR, "method": "GET", "status": "200"}
    )


def test_every_scrape_counts_the_requests_of_both_workers(
    trained: Settings, tmp_path: Path
) -> None:
    with serving(trained, tmp_path / "serve.log", workers=2) as server:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for i in range(300):
                response = client.get(POPULAR, params={"k": 1 + i % 20})
                assert response.status_code == 200, response.text
            scrapes = []
            pids = set()
            for _ in range(6):
                # a new connection each time: uvicorn's workers share the socket, so
                # scrapes land on either worker
                scrape = httpx.get(f"{server.base}/metrics", timeout=10)
                assert scrape.status_code == 200
                assert scrape.headers["content-type"].startswith("text/plain")
                scrapes.append(scrape.text)
            served = samples(scrapes[-1], "bookrec_model_version_served")
            pids = {labels["pid"] for labels, _ in served}
            text = scrapes[-1]
        log_lines = [
            json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
        ]
    assert [popular_count(text) for text in scrapes] == [300.0] * 6, samples(
        scrapes[0], "bookrec_http_requests_total"
    )
    # one series per API worker, each serving version 1
    assert len(pids) == 2 and {value for _, value in served} == {1.0}
    answers = samples(text, "bookrec_recommendations_total")
    by_source = {
        labels["source"]: value for labels, value in answers if labels["strategy"] == "popular"
    }
    assert by_source["scored"] + by_source["hit"] == 300 and by_source["precomputed"] == 0
    assert {labels["variant"] for labels, _ in answers} == {"none"}
    # 20 distinct lists: each worker scores each at most once, the rest are cache hits
    assert 20 <= by_source["scored"] <= 40
    hist = samples(text, "bookrec_http_request_duration_seconds_count")
    assert sum(v for labels, v in hist if labels["route"] == POPULAR) == 300
    # the access log names the route template, the status, latency, model and variant
    access = [line for line in log_lines if line.get("event") == "request"]
    assert len(access) == 300
    first = access[0]
    assert first["route"] == POPULAR and first["status"] == 200
    assert first["model_version"] == 1 and first["variant"] == "none"
    assert first["request_id"] and first["duration_ms"] >= 0


def test_routes_are_templates_and_unknown_paths_one_label(trained: Settings) -> None:
    settings = trained.model_copy(update={"metrics_allow": []})
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as client:
        assert client.get("/api/v1/books/1").status_code == 200
        assert client.get("/api/v1/books/2").status_code == 200
        assert client.get("/no/such/page/123").status_code == 404
        # an empty allow-list lets nobody in
        assert client.get("/metrics").status_code == 403
    with TestClient(create_app(trained), client=("127.0.0.1", 5000)) as client:
        text = client.get("/metrics").text
    routes = {labels["route"] for labels, _ in samples(text, "bookrec_http_requests_total")}
    assert "/api/v1/books/{book_id}" in routes and "unmatched" in routes
    assert not any(route.startswith(("/api/v1/books/1", "/no/")) for route in routes)


def test_metrics_refuse_other_networks_and_require_the_token(trained: Settings) -> None:
    token = "s3cret-metrics-token-0123"
    settings = trained.model_copy(update={"metrics_token": SecretStr(token)})
    with TestClient(create_app(settings), client=("203.0.113.7", 5000)) as client:
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert "BOOKREC_METRICS_ALLOW" in refused.json()["detail"]
    with TestClient(create_app(settings), client=("10.1.2.3", 5000)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and "bookrec_http_requests_total" in allowed.text


def test_readiness_says_degraded_when_redis_is_unreachable(trained: Settings) -> None:
    # nothing listens on port 1: Redis is configured but down
    settings = trained.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded" and body["degraded"] == ["redis"]
        assert body["checks"]["redis"]["status"] == "degraded"
        assert "still serving" in body["checks"]["redis"]["detail"]
        # and the lists are still answered
        assert client.get(POPULAR).status_code == 200


def test_readiness_checks_redis_when_set(
    trained: Settings, redis_server: object, redis_prefix: str
) -> None:
    from tests.fixtures.redis import REDIS_URL

    settings = trained.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": redis_prefix})
    with TestClient(create_app(settings)) as client:
        body = client.get("/health/ready").json()
    assert body["status"] == "ready" and body["checks"]["redis"] == {"status": "ok"}


def test_the_embedded_workers_jobs_are_in_the_servers_metrics(
    trained: Settings, engine: Engine, tmp_path: Path
) -> None:
    with (
        serving(trained, tmp_path / "serve.log", workers=1) as server,
        httpx.Client(base_url=server.base, timeout=10) as client,
    ):
        headers = signed_in(client, engine, trained, "ops-admin@example.org", role="admin")  # type: ignore[arg-type]
        posted = client.post(
            "/api/v1/admin/train", json={"algo": "popularity", "force": True}, headers=headers
        )
        assert posted.status_code == 202, posted.text

        def jobs_counted() -> str | None:
            text = client.get("/metrics").text
            counted = samples(text, "bookrec_training_jobs_total")
            return (
                text
                if any(
                    labels == {"outcome": "succeeded"} and value == 1 for labels, value in counted
                )
                else None
            )

        text = wait_for("the job in /metrics", jobs_counted, 120, server.log)
    durations = samples(text, "bookrec_training_job_duration_seconds_count")
    assert sum(v for labels, v in durations if labels["outcome"] == "succeeded") == 1
    # the new version was activated by the worker process: counted in the same scrape
    activations = samples(text, "bookrec_model_activations_total")
    assert sum(v for _, v in activations) >= 1


CELERY_LIKE = """
import multiprocessing, sys
import httpx
from bookrec.observability.metrics import TRAINING_JOBS, serve_metrics

serve_metrics(int(sys.argv[1]), "127.0.0.1")

def job():  # as a Celery prefork child running a task
    TRAINING_JOBS.labels("failed").inc()

for _ in range(2):
    child = multiprocessing.get_context("fork").Process(target=job)
    child.start()
    child.join()
print(httpx.get(f"http://127.0.0.1:{sys.argv[1]}/metrics").text)
"""


def test_the_worker_metrics_port_sums_its_pool_children(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", CELERY_LIKE, str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counted = samples(result.stdout, "bookrec_training_jobs_total")
    assert counted == [({"outcome": "failed"}, 2.0)]
