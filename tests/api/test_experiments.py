"""Experiments through the HTTP API: lifecycle and its errors, lists by variant, impressions
and clicks, results (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.fixtures.accounts import PASSWORD, signed_in
from tests.fixtures.cli import invoke, invoke_json
from tests.fixtures.datasets import write_small_dataset

from bookrec.accounts.audit import AuditEvent
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.experiments.models import Exposure
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train

API = "/api/v1"


def admin_of(client: TestClient, engine: Engine, settings: Settings) -> dict[str, str]:
    return signed_in(client, engine, settings, "root@example.com", role="admin")


def api_key(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    created = client.post(
        f"{API}/admin/api-keys",
        json={"name": "shop", "scopes": ["recommendations:read", "events:write"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


def experiment(client: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/admin/experiments", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if field is not None:
        assert body.get("field") == field or field in response.text, body
    return body


def test_lifecycle_rules_and_their_errors(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    admin = admin_of(client, engine, loaded)
    url = f"{API}/admin/experiments"
    two = [{"name": "a"}, {"name": "b", "strategy": "popular"}]
    problem(client.post(url, json={"name": "x", "variants": two}), 401)
    reader = signed_in(client, engine, loaded, "reader@example.com")
    problem(client.post(url, json={"name": "x", "variants": two}, headers=reader), 403)

    bad = [
        (
            {"name": "x", "variants": [{"name": "a"}, {"name": "b", "strategy": "random"}]},
            "strategy",
        ),
        (
            {"name": "x", "variants": [{"name": "a"}, {"name": "b", "model_version": 99}]},
            "variants[1].model_version",
        ),
        ({"name": "x", "variants": [{"name": "a", "weight": 0}, {"name": "b"}]}, "weight"),
        ({"name": "x", "variants": [{"name": "a"}, {"name": "a"}]}, "variant names must differ"),
        ({"name": "x", "variants": [{"name": "a"}]}, "variants"),
    ]
    for body, field in bad:
        problem(client.post(url, json=body, headers=admin), 422, field)

    first = experiment(client, admin, name="first", variants=two)
    assert first["status"] == "draft" and [v["name"] for v in first["variants"]] == ["a", "b"]
    problem(client.post(url, json={"name": "first", "variants": two}, headers=admin), 409)
    second = experiment(client, admin, name="second", variants=two)
    started = client.post(f"{url}/{first['experiment_id']}/start", headers=admin)
    assert started.status_code == 200 and started.json()["status"] == "running"
    body = problem(client.post(f"{url}/{second['experiment_id']}/start", headers=admin), 409)
    assert "is running" in body["detail"]
    problem(
        client.post(f"{url}/{first['experiment_id']}/ship", json={"variant": "c"}, headers=admin),
        422,
        "variant",
    )
    # before the minimum sample, shipping needs force
    early = client.post(
        f"{url}/{first['experiment_id']}/ship", json={"variant": "b"}, headers=admin
    )
    assert "not enough data" in problem(early, 409)["detail"]
    stopped = client.post(f"{url}/{first['experiment_id']}/stop", headers=admin)
    assert stopped.json()["status"] == "stopped"
    body = problem(client.post(f"{url}/{first['experiment_id']}/start", headers=admin), 409)
    assert "only a draft can start" in body["detail"]
    problem(client.post(f"{url}/{first['experiment_id']}/stop", headers=admin), 409)
    problem(client.get(f"{url}/999", headers=admin), 404)

    listed = client.get(url, headers=admin).json()
    assert [e["name"] for e in listed["items"]] == ["second", "first"] and listed["total"] == 2
    with Session(engine) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("experiment.%"))
        ).all()
    assert actions == [
        "experiment.create",
        "experiment.create",
        "experiment.start",
        "experiment.stop",
    ]


def test_lists_follow_each_readers_variant_stickily_and_say_so(
    engine: Engine, loaded: Settings
) -> None:
    registry = ModelRegistry(loaded.models_dir)
    other = train(engine, registry, "itemknn", activate=False, settings=loaded).version.number
    with TestClient(create_app(loaded)) as client:
        admin = admin_of(client, engine, loaded)
        key = api_key(client, admin)
        created = experiment(
            client,
            admin,
            name="knn vs popularity",
            variants=[{"name": "control"}, {"name": "knn", "model_version": other}],
        )
        eid = created["experiment_id"]
        assert client.post(f"{API}/admin/experiments/{eid}/start", headers=admin).status_code == 200
        seen: dict[int, str] = {}
        for user_id in range(1, 151):
            response = client.get(f"{API}/recommendations/users/{user_id}", headers=key)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["experiment_id"] == eid
            assert response.headers["X-Experiment-Variant"] == body["variant"]
            expected_version = other if body["variant"] == "knn" else 1
            assert body["model_version"] == expected_version
            assert int(response.headers["X-Model-Version"]) == expected_version
            seen[user_id] = body["variant"]
        assert 40 < list(seen.values()).count("knn") < 110  # 150 readers, half each
        # again (now from the cache): the same variant, never the other's list
        for expected_source in ("miss", "hit"):
            again = client.get(
                f"{API}/recommendations/users/7", params={"explain": True}, headers=key
            )
            assert again.headers["X-Cache"] == expected_source
            assert again.json()["variant"] == seen[7]
        batch = client.post(
            f"{API}/recommendations/batch", json={"user_ids": [1, 2, 3, 4, 5]}, headers=key
        ).json()
        assert {r["user_id"]: r["variant"] for r in batch["results"]} == {
            u: seen[u] for u in range(1, 6)
        }
        # popular and trending lists are not part of the experiment
        popular = client.get(f"{API}/recommendations/popular").json()
        assert popular["experiment_id"] is None and popular["variant"] is None
    # another worker (a restart): the same readers get the same variants
    with TestClient(create_app(loaded)) as client:
        for user_id in (3, 50, 149):
            body = client.get(f"{API}/recommendations/users/{user_id}", headers=key).json()
            assert body["variant"] == seen[user_id]
        stop = client.post(f"{API}/admin/experiments/{eid}/stop", headers=admin)
        assert stop.status_code == 200
        after = client.get(f"{API}/recommendations/users/3", headers=key)
        assert after.json()["experiment_id"] is None and "X-Experiment-Variant" not in after.headers


def test_a_strategy_variant_serves_that_strategy(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    admin = admin_of(client, engine, loaded)
    key = api_key(client, admin)
    created = experiment(
        client,
        admin,
        name="trending only",
        variants=[{"name": "t", "strategy": "trending"}, {"name": "t2", "strategy": "trending"}],
    )
    client.post(f"{API}/admin/experiments/{created['experiment_id']}/start", headers=admin)
    trending = [
        b["book_id"]
        for b in client.get(f"{API}/recommendations/trending", params={"k": 100}).json()["items"]
    ]
    body = client.get(f"{API}/recommendations/users/5", params={"k": 10}, headers=key).json()
    assert body["strategy"] == "trending"
    picks = [b["book_id"] for b in body["items"]]
    # the trending order, less the reader's own books
    assert picks == [b for b in trending if b in set(picks)]
    reader = signed_in(client, engine, loaded, "me@example.com")
    mine = client.get(f"{API}/recommendations/me", headers=reader)
    assert mine.json()["strategy"] == "trending" and mine.headers["X-Experiment-Variant"] in (
        "t",
        "t2",
    )
    # what the experiment showed the reader is theirs: in their export, gone with their account
    client.app.state.bookrec.serving.exposures.flush()  # type: ignore[attr-defined]
    export = client.get(f"{API}/me/export", headers=reader).json()
    shown = {row["book_id"] for row in export["experiment_exposures"]}
    assert shown == {item["book_id"] for item in mine.json()["items"]}
    assert {row["variant"] for row in export["experiment_exposures"]} == {
        mine.headers["X-Experiment-Variant"]
    }
    gone = client.request("DELETE", f"{API}/me", json={"password": PASSWORD}, headers=reader)
    assert gone.status_code == 204, gone.text
    with Session(engine) as session:
        left = session.scalar(select(func.count()).select_from(Exposure))
    assert left == 10  # user 5's list; the erased reader's rows went with them


@pytest.fixture
def six_hundred(engine: Engine, database_url: str, tmp_path: Path) -> Settings:
    from tests.api.conftest import make_settings

    settings = make_settings(database_url, tmp_path / "var")
    import_directory(engine, write_small_dataset(tmp_path / "data", readers=600, ratings=12_000))
    train(engine, ModelRegistry(settings.models_dir), "popularity", settings=settings)
    return settings


def run_experiment(
    client: TestClient,
    admin: dict[str, str],
    key: dict[str, str],
    name: str,
    click_rates: dict[str, float],
    seed: int,
) -> dict[str, Any]:
    """Lists for 600 readers (asked in batches), then impressions and clicks as an app reports
    them: each shown book clicked with its variant's rate. Returns the experiment's results."""
    rng = np.random.default_rng(seed)
    created = experiment(client, admin, name=name, variants=[{"name": n} for n in click_rates])
    eid = created["experiment_id"]
    client.post(f"{API}/admin/experiments/{eid}/start", headers=admin)
    events: list[dict[str, Any]] = []
    for first in range(1, 601, 100):
        users = list(range(first, first + 100))
        batch = client.post(
            f"{API}/recommendations/batch", json={"user_ids": users, "k": 10}, headers=key
        )
        assert batch.status_code == 200, batch.text
        for result in batch.json()["results"]:
            common = {"user_id": result["user_id"], "experiment_id": eid}
            for item in result["items"]:
                shown = {"book_id": item["book_id"], **common}
                events.append({"kind": "impression", "variant": result["variant"], **shown})
                if rng.random() < click_rates[result["variant"]]:
                    events.append({"kind": "click", **shown})
    for start in range(0, len(events), 100):
        posted = client.post(
            f"{API}/events", json={"events": events[start : start + 100]}, headers=key
        )
        assert posted.status_code == 202, posted.text
    client.post(f"{API}/admin/experiments/{eid}/stop", headers=admin)
    report = client.get(f"{API}/admin/experiments/{eid}", headers=admin)
    assert report.status_code == 200, report.text
    return report.json()["results"]


def test_impressions_clicks_and_results_find_a_real_difference_and_not_a_fake_one(
    engine: Engine, database_url: str, six_hundred: Settings
) -> None:
    with TestClient(create_app(six_hundred)) as client:
        admin = admin_of(client, engine, six_hundred)
        key = api_key(client, admin)
        ab = run_experiment(client, admin, key, "ab", {"control": 0.05, "better": 0.10}, seed=1)
        assert all(v["readers"] > 240 for v in ab["variants"]), ab["variants"]
        assert ab["test"]["significant"] and ab["comparisons"][0]["difference"] > 0
        assert ab["enough_data"] and not ab["sample_ratio"]["mismatch"]
        low, high = ab["variants"][0]["ctr_low"], ab["variants"][0]["ctr_high"]
        assert low < ab["variants"][0]["ctr"] < high
        aa = run_experiment(client, admin, key, "aa", {"a": 0.08, "b": 0.08}, seed=4)
        assert not aa["test"]["significant"], aa
    # operators read the same results from the command line
    env = {"DATABASE_URL": database_url, "BOOKREC_VAR_DIR": str(six_hundred.var_dir)}
    shown_json = invoke_json(env, "experiments", "show", "1", "--json")
    assert shown_json["name"] == "ab" and shown_json["results"]["test"]["significant"]
    code, text = invoke(env, "experiments", "show", "1")
    assert code == 0 and "better vs control: +" in text and "significant" in text, text
    code, text = invoke(env, "experiments", "list")
    assert code == 0 and "aa" in text and "stopped" in text, text
    with Session(engine) as session:  # the server logged its impressions too (no double count)
        shown = session.scalar(select(func.count()).select_from(Exposure))
    assert shown == sum(v["impressions"] for v in ab["variants"] + aa["variants"])


def test_server_logs_impressions_and_counts_clicks_without_an_experiment_id(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    admin = admin_of(client, engine, loaded)
    key = api_key(client, admin)
    created = experiment(client, admin, name="plain", variants=[{"name": "a"}, {"name": "b"}])
    eid = created["experiment_id"]
    client.post(f"{API}/admin/experiments/{eid}/start", headers=admin)
    body = client.get(f"{API}/recommendations/users/9", params={"k": 5}, headers=key).json()
    state = client.app.state.bookrec  # type: ignore[attr-defined]
    state.serving.exposures.flush()
    clicked = body["items"][0]["book_id"]
    event = {"kind": "click", "book_id": clicked, "user_id": 9}
    assert client.post(f"{API}/events", json={"events": [event]}, headers=key).status_code == 202
    with Session(engine) as session:
        rows = session.execute(
            select(Exposure.book_id, Exposure.variant, Exposure.clicked_at)
        ).all()
    assert sorted(r.book_id for r in rows) == sorted(i["book_id"] for i in body["items"])
    assert {r.variant for r in rows} == {body["variant"]}
    assert [r.book_id for r in rows if r.clicked_at is not None] == [clicked]
    # the wrong variant, an unknown experiment, a draft: 422 naming the event, nothing kept
    other = "a" if body["variant"] == "b" else "b"
    draft = experiment(client, admin, name="draft", variants=[{"name": "a"}, {"name": "b"}])
    for bad, field in [
        ({"variant": other, "experiment_id": eid}, "events[1].variant"),
        ({"experiment_id": 999}, "events[1].experiment_id"),
        ({"experiment_id": draft["experiment_id"]}, "events[1].experiment_id"),
    ]:
        events = [event, {"kind": "click", "book_id": clicked, "user_id": 9, **bad}]
        problem(client.post(f"{API}/events", json={"events": events}, headers=key), 422, field)
    # an API key's events name their reader; a bearer token's never do
    problem(
        client.post(
            f"{API}/events", json={"events": [{"kind": "view", "book_id": 1}]}, headers=key
        ),
        422,
        "events[0].user_id",
    )
    reader = signed_in(client, engine, loaded, "r@example.com")
    problem(
        client.post(f"{API}/events", json={"events": [event]}, headers=reader),
        422,
        "events[0].user_id",
    )
    no_scope = client.post(
        f"{API}/admin/api-keys",
        json={"name": "ro", "scopes": ["recommendations:read"]},
        headers=admin,
    ).json()["key"]
    problem(
        client.post(f"{API}/events", json={"events": [event]}, headers={"X-API-Key": no_scope}), 403
    )


def test_shipping_a_model_variant_activates_it(engine: Engine, loaded: Settings) -> None:
    registry = ModelRegistry(loaded.models_dir)
    other = train(engine, registry, "itemknn", activate=False, settings=loaded).version.number
    with TestClient(create_app(loaded)) as client:
        admin = admin_of(client, engine, loaded)
        created = experiment(
            client,
            admin,
            name="ship",
            variants=[{"name": "a"}, {"name": "knn", "model_version": other}],
        )
        eid = created["experiment_id"]
        client.post(f"{API}/admin/experiments/{eid}/start", headers=admin)
        shipped = client.post(
            f"{API}/admin/experiments/{eid}/ship",
            json={"variant": "knn", "force": True},
            headers=admin,
        )
        assert shipped.status_code == 200, shipped.text
        assert shipped.json()["status"] == "shipped" and shipped.json()["shipped_variant"] == "knn"
        active = client.get(f"{API}/admin/models/{other}", headers=admin).json()
        assert active["status"] == "active"
