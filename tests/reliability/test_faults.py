"""Production mode under load and faults (issue 22, PRODUCT.md §12): `make test-reliability`.

One deployment of its own — a PostgreSQL cluster and a Redis on free ports, `bookrec serve
--workers 2` and a Celery `bookrec worker` — with readers rating, shelving and reading in a
loop while, in turn: Redis is killed and restarted, PostgreSQL restarted, PostgreSQL stopped
for 10 s, an API worker SIGKILLed, the job worker SIGKILLed mid-training, and the model
directory made read-only during training. Then: no acknowledged write lost, no 500 and no
5xx but 503 + Retry-After while the database is away, every worker serving again within
seconds, the served model unchanged by failed training. Figures go to the test's output
(`-s`) and to `$BOOKREC_RELIABILITY_REPORT` when set (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fixtures.database import services_required
from tests.reliability.deployment import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BOOKS,
    Deployment,
    deploy,
    missing_binaries,
    wait,
    worker_pids,
)
from tests.reliability.load import API, Load, Outcome, worker_of

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

#: After the database is back, 503s may still come from requests that started before.
GRACE_SECONDS = 5.0
#: Both API workers writing again after the database is back: within this many seconds.
RECOVERY_SECONDS = 20.0
#: A new API worker answering after one was killed: it boots from scratch (imports, model
#: load), which takes a few seconds on an idle machine and far longer on a crowded CI one.
WORKER_BOOT_SECONDS = 120.0


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    missing = missing_binaries()
    if missing:
        if services_required():
            pytest.fail(missing + " (BOOKREC_REQUIRE_SERVICES=1)")
        pytest.skip(missing)
    with deploy(job_worker=True) as deployed:
        yield deployed


@dataclass
class Timeline:
    """When each fault began and ended (monotonic seconds), for judging each answer."""

    t0: float = field(default_factory=time.monotonic)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def phase(self, name: str, started: float) -> None:
        self.phases[name] = (started, time.monotonic())

    def within(self, outcome: Outcome, names: tuple[str, ...], grace: float) -> bool:
        return any(
            outcome.ended >= self.phases[name][0]
            and outcome.started <= self.phases[name][1] + grace
            for name in names
            if name in self.phases
        )


def _live_workers(base_url: str, expected: int) -> set[str | None]:
    """The request-id prefixes of the workers answering, asked on new connections."""
    found: set[str | None] = set()
    for _ in range(200):
        found.add(worker_of(httpx.get(f"{base_url}/health/live", timeout=5)))
        if len(found) >= expected:
            break
    assert len(found) == expected, f"{len(found)} workers answered, expected {expected}"
    return found


def _admin_client(deployed: Deployment) -> httpx.Client:
    client = httpx.Client(base_url=deployed.base_url, timeout=30)
    login = client.post(
        f"{API}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return client


def _job(admin: httpx.Client, job_id: int) -> dict[str, Any]:
    response = admin.get(f"{API}/admin/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_faults_under_load(deployment: Deployment) -> None:
    deployed = deployment
    timeline = Timeline()
    load = Load(deployed.base_url, readers=4, books=BOOKS)
    load.sign_up()
    served_before = deployed.active_version()
    assert served_before is not None
    load.start()
    try:
        time.sleep(3)

        # Redis killed and restarted: limits, cache and activations fall back per worker
        started = time.monotonic()
        deployed.redis.kill()
        time.sleep(6)
        deployed.redis.start()
        timeline.phase("redis", started)
        time.sleep(3)

        # PostgreSQL restarted (a fast shutdown drops every connection)
        started = time.monotonic()
        deployed.cluster.restart()
        timeline.phase("postgres-restart", started)
        _wait_db_served(load, started, deployed, timeline, "postgres-restart")
        time.sleep(2)

        # PostgreSQL stopped for 10 s
        started = time.monotonic()
        deployed.cluster.stop()
        time.sleep(10)
        deployed.cluster.start()
        timeline.phase("postgres-stopped", started)
        _wait_db_served(load, started, deployed, timeline, "postgres-stopped")
        time.sleep(2)

        # an API worker SIGKILLed: the other answers, uvicorn starts a new one
        assert deployed.serve is not None
        before = worker_pids(deployed.serve)
        assert len(before) == 2, f"expected 2 API workers, found {before}"
        seen_before = _live_workers(deployed.base_url, 2)
        victim = min(before)
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        timeline.phase("api-worker-killed", started)

        def new_worker_serving() -> bool:
            # the readers' keep-alive connections stay with the surviving worker: ask on new
            # connections, which either worker may accept
            try:
                answer = httpx.get(f"{deployed.base_url}/health/live", timeout=5)
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and worker_of(answer) not in seen_before

        wait(new_worker_serving, WORKER_BOOT_SECONDS, "a new API worker to answer", deployed)
        timeline.figures["api_worker_back_seconds"] = round(time.monotonic() - started, 1)
        assert len(worker_pids(deployed.serve)) == 2

        admin = _admin_client(deployed)
        # the job worker SIGKILLed mid-training: the job ends failed, nothing served changes
        job = admin.post(
            f"{API}/admin/train",
            json={"algo": "als", "params": {"iterations": 400, "factors": 256}, "force": True},
        )
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]
        wait(
            lambda: _job(admin, job_id)["status"] == "running",
            60,
            "the training job to start",
            deployed,
        )
        time.sleep(1.5)
        assert _job(admin, job_id)["status"] == "running", "training ended before the kill"
        started = time.monotonic()
        deployed.kill_group(deployed.worker)
        failed = wait(
            lambda: (body := _job(admin, job_id))["status"] == "failed" and body,
            60,
            "the killed job to be marked failed",
            deployed,
        )
        timeline.phase("job-worker-killed", started)
        timeline.figures["killed_job_failed_after_seconds"] = round(time.monotonic() - started, 1)
        timeline.figures["killed_job_error"] = failed["error"]
        assert deployed.active_version() == served_before
        deployed.start_worker()

        # the model directory read-only during training: the job fails, nothing changes
        models_dir = deployed.settings.models_dir
        mode = models_dir.stat().st_mode
        models_dir.chmod(stat.S_IMODE(mode) & ~0o222)
        started = time.monotonic()
        try:
            job = admin.post(f"{API}/admin/train", json={"algo": "popularity", "force": True})
            assert job.status_code == 202, job.text
            job_id = job.json()["job_id"]
            failed = wait(
                lambda: (body := _job(admin, job_id))["status"] in ("failed", "succeeded") and body,
                120,
                "the training job on a read-only model directory to end",
                deployed,
            )
        finally:
            models_dir.chmod(stat.S_IMODE(mode))
        timeline.phase("models-read-only", started)
        assert failed["status"] == "failed", failed
        timeline.figures["read_only_job_error"] = failed["error"]
        assert deployed.active_version() == served_before
        assert _served_version(deployed) == served_before

        # and training works again once the directory is writable
        job = admin.post(f"{API}/admin/train", json={"algo": "popularity", "force": True})
        assert job.status_code == 202, job.text
        done = wait(
            lambda: (
                (body := _job(admin, job.json()["job_id"]))["status"] in ("failed", "succeeded")
                and body
            ),
            120,
            "training after the faults",
            deployed,
        )
        assert done["status"] == "succeeded", done
        admin.close()
        time.sleep(2)
    finally:
        load.stop()
    _check(load, timeline, deployed)


def _served_version(deployed: Deployment) -> int | None:
    body = httpx.get(f"{deployed.base_url}/health/ready", timeout=10).json()
    version: int | None = body["model_version"]
    return version


def _wait_db_served(
    load: Load, since: float, deployed: Deployment, timeline: Timeline, name: str
) -> None:
    """Both API workers answer a request needing the database again; record how soon."""

    def both_back() -> bool:
        ok = {
            o.worker
            for o in list(load.outcomes)
            if o.started > timeline.phases[name][1] and o.kind == "rate" and o.status in (200, 201)
        }
        return len(ok) >= 2

    wait(both_back, RECOVERY_SECONDS, f"both workers to write again after {name}", deployed)
    timeline.figures[f"{name}_writes_back_after_seconds"] = round(
        time.monotonic() - timeline.phases[name][1], 1
    )


def _check(load: Load, timeline: Timeline, deployed: Deployment) -> None:
    outcomes = load.outcomes
    db_away = ("postgres-restart", "postgres-stopped")
    statuses = Counter(o.status for o in outcomes)
    unavailable = [o for o in outcomes if o.status == 503]
    dropped = [o for o in outcomes if o.status is None]
    killed_at = timeline.phases["api-worker-killed"][0]
    # a request in flight on the worker at the instant it was SIGKILLed loses its connection:
    # that is the kill itself, not the service failing; any other dropped connection is a fault
    in_flight = [o for o in dropped if o.started <= killed_at + 0.5 and o.ended >= killed_at]

    lost = _lost_writes(load, deployed)
    figures = {
        "serve_boot_seconds": deployed.boot_seconds,
        **timeline.figures,
        "requests": len(outcomes),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "by_kind": dict(Counter(o.kind for o in outcomes)),
        "acknowledged_ratings": sum(len(r.acknowledged_ratings) for r in load.readers),
        "acknowledged_shelvings": sum(len(r.shelved) for r in load.readers),
        "lost_writes": len(lost),
        "503_database_unavailable": len(unavailable),
        "503_per_phase": dict(
            Counter(
                next(name for name in db_away if timeline.within(o, (name,), GRACE_SECONDS))
                for o in unavailable
                if timeline.within(o, db_away, GRACE_SECONDS)
            )
        ),
        "503_seconds_per_phase": {
            name: round(
                max((o.ended for o in unavailable if timeline.within(o, (name,), 0)), default=0)
                - min(
                    (o.started for o in unavailable if timeline.within(o, (name,), 0)), default=0
                ),
                1,
            )
            for name in db_away
        },
        "dropped_connections": len(dropped),
        "dropped_in_flight_at_worker_kill": len(in_flight),
        "phase_seconds": {
            name: round(end - start, 1) for name, (start, end) in timeline.phases.items()
        },
        "duration_seconds": round(time.monotonic() - timeline.t0, 1),
    }
    print("\nreliability figures:", json.dumps(figures, indent=2))
    report = os.environ.get("BOOKREC_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")

    assert not lost, f"acknowledged writes lost: {lost[:10]}"
    five_hundreds = [o for o in outcomes if o.status is not None and o.status >= 500]
    assert all(o.status == 503 for o in five_hundreds), Counter(o.status for o in five_hundreds)
    for o in unavailable:
        assert o.problem == "database-unavailable", o
        assert o.retry_after is not None and int(o.retry_after) > 0, o
        assert timeline.within(o, db_away, GRACE_SECONDS), f"503 outside a database outage: {o}"
    assert all(not timeline.within(o, ("redis",), 0) for o in five_hundreds if o not in unavailable)
    unexplained = [o for o in dropped if o not in in_flight]
    assert not unexplained, f"dropped connections: {unexplained[:5]}"
    assert len(in_flight) <= len(load.readers)
    # every kind of request was answered, during the run and at its end
    assert {o.kind for o in outcomes if o.status in (200, 201)} == {
        "rate",
        "shelve",
        "my-ratings",
        "for-me",
        "popular",
    }
    # what needs no database kept answering while it was away
    popular_away = [o for o in outcomes if o.kind == "popular" and timeline.within(o, db_away, 0)]
    assert popular_away and all(o.status == 200 for o in popular_away), Counter(
        o.status for o in popular_away
    )


def _lost_writes(load: Load, deployed: Deployment) -> list[str]:
    """Every acknowledged rating and shelving, read back from the database."""
    lost: list[str] = []
    with deployed.engine.connect() as connection:
        for reader in load.readers:
            held: dict[int, int] = {
                int(book_id): int(rating)
                for book_id, rating in connection.execute(
                    text("SELECT book_id, rating FROM ratings WHERE reader_id = :r"),
                    {"r": reader.reader_id},
                )
            }
            shelf = set(
                connection.execute(
                    text("SELECT book_id FROM shelf WHERE reader_id = :r"),
                    {"r": reader.reader_id},
                ).scalars()
            )
            for book_id in reader.acknowledged_ratings:
                if held.get(book_id) not in reader.ratings[book_id]:
                    lost.append(
                        f"reader {reader.reader_id} book {book_id}: database holds "
                        f"{held.get(book_id)}, acknowledged {reader.ratings[book_id]}"
                    )
            lost.extend(
                f"reader {reader.reader_id} shelf book {book_id}: missing"
                for book_id in reader.shelved - shelf
            )
    return lost
