"""The admin jobs API: queue a training run, list and read jobs, problem+json on mistakes.
Embedded mode: the job waits in the table for the embedded worker, run here in-process."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bookrec.accounts.audit import AuditEvent
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.jobs.embedded import EmbeddedWorker
from bookrec.jobs.models import TrainingJob
from tests.fixtures.accounts import signed_in
from tests.fixtures.registry import RegistryView
from tests.jobs.conftest import ADMIN_EMAIL

TRAIN = "/api/v1/admin/train"
JOBS = "/api/v1/admin/jobs"


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_post_train_queues_a_job_the_embedded_worker_runs(
    loaded: Settings, client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    registry = RegistryView(engine, loaded.models_dir)
    before = registry.active_number()

    response = client.post(TRAIN, json={"algo": "popularity", "force": True}, headers=admin_headers)

    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["trigger"] == "api"
    assert job["request"] == {
        "algo": "popularity",
        "params": {},
        "force": True,
        "activate": True,
        "engine": "local",
        "spark_master": None,
    }
    assert job["requested_by"].startswith("user:")
    with Session(engine) as session:
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "model.train"))
        assert [event.target for event in audited] == [f"training_job:{job['job_id']}"]

    worker = EmbeddedWorker(loaded)
    worker.tick(engine, utcnow())  # claims the job and starts its child process
    running = client.get(f"{JOBS}/{job['job_id']}", headers=admin_headers).json()
    assert running["status"] in {"running", "succeeded"}
    assert running["started_at"] is not None
    assert worker._child is not None
    worker._child.join(60)
    worker.tick(engine, utcnow())

    done = client.get(f"{JOBS}/{job['job_id']}", headers=admin_headers).json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == 100.0
    assert done["result"]["promoted"] is True
    assert str(done["result"]["version"]) != before
    assert registry.active_number() == done["result"]["version"]


def test_a_crashed_job_process_is_recorded_at_once(engine: Engine, settings: Settings) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            TrainingJob(
                request={"algo": "als", "params": {"iterations": 100000}},
                trigger="cli",
                status="queued",
                progress=0.0,
            )
        )
    worker = EmbeddedWorker(settings)
    worker.tick(engine, utcnow())
    assert worker._child is not None
    worker._child.kill()  # as the OOM killer would
    worker._child.join(10)
    worker.tick(engine, utcnow())

    with Session(engine) as session:
        job = session.scalars(select(TrainingJob)).one()
    assert job.status == "failed"
    assert job.error == "training process killed by SIGKILL (out of memory?)"


def test_jobs_are_listed_newest_first_and_filtered_by_status(
    client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    ids = [
        client.post(TRAIN, json={"algo": "popularity"}, headers=admin_headers).json()["job_id"]
        for _ in range(3)
    ]
    with Session(engine) as session, session.begin():
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.job_id == ids[0])
            .values(status="failed", error="boom")
        )

    listed = client.get(JOBS, params={"size": 2}, headers=admin_headers).json()
    assert [item["job_id"] for item in listed["items"]] == [ids[2], ids[1]]
    assert listed["total"] == 3 and listed["size"] == 2
    failed = client.get(JOBS, params={"status": "failed"}, headers=admin_headers).json()
    assert [item["job_id"] for item in failed["items"]] == [ids[0]]
    assert failed["items"][0]["error"] == "boom"
    assert_problem(client.get(JOBS, params={"status": "sleeping"}, headers=admin_headers), 422)
    assert_problem(client.get(f"{JOBS}/424242", headers=admin_headers), 404)
    assert_problem(client.get(JOBS), 401)


def test_listing_reaps_jobs_whose_worker_is_gone(
    client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    job_id = client.post(TRAIN, json={}, headers=admin_headers).json()["job_id"]
    with Session(engine) as session, session.begin():
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.job_id == job_id)
            .values(status="running", heartbeat_at=utcnow().replace(year=2020))
        )

    job = client.get(f"{JOBS}/{job_id}", headers=admin_headers).json()

    assert job["status"] == "failed"
    assert job["error"].startswith("worker lost (no heartbeat since 2020-")


BAD_REQUESTS: list[Any] = [
    {"algo": "deep-magic"},
    {"algo": "als", "params": {"factors": "many"}},
    {"algo": "als", "params": [1, 2]},
    {"params": "factors=3"},
    {"algo": "popularity", "surprise": True},
    [],
]


def test_bad_training_requests_get_422_problems_and_queue_nothing(
    client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    for body in BAD_REQUESTS:
        assert_problem(client.post(TRAIN, json=body, headers=admin_headers), 422)
    assert_problem(client.post(TRAIN, json={}), 401)
    with Session(engine) as session:
        assert session.scalars(select(TrainingJob)).all() == []


def test_an_unreachable_job_queue_fails_the_job_and_answers_503(
    engine: Engine, settings: Settings
) -> None:
    production = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(production)) as client:
        headers = signed_in(client, engine, settings, ADMIN_EMAIL, role="admin")

        assert_problem(client.post(TRAIN, json={"algo": "popularity"}, headers=headers), 503)

    with Session(engine) as session:
        [job] = session.scalars(select(TrainingJob)).all()
    assert job.status == "failed"
    assert (job.error or "").startswith("could not reach the job queue")
