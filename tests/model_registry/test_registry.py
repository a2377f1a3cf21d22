"""The database-backed model registry, on SQLite and PostgreSQL (the `engine` fixture).

Artifacts here are a few small files: the registry only moves, hashes and verifies them.
Each step runs in a unit of work of its own (`RegistryView`), as a command or request would.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import IntegrityError
from tests.fixtures.registry import RegistryView

from bookrec.config import Settings
from bookrec.db.session import unit_of_work
from bookrec.errors import Conflict, NotFound
from bookrec.model_registry.models import ModelActivation, ModelVersionRow
from bookrec.model_registry.notify import redis_notifier
from bookrec.model_registry.version import version_number
from bookrec.recsys.artifacts import ArtifactError

ROOT = Path(__file__).resolve().parents[2]


def info(algo: str = "popularity", ndcg: float = 0.1) -> dict[str, Any]:
    return {
        "algo": algo,
        "params": {"mode": "all_time"},
        "data": {"ratings": 10, "readers": 2, "books": 5, "newest_timestamp": None},
        "metrics": {"ndcg@10": ndcg},
        "gate": {"decision": "promote"},
        "timings": {"total": 0.1},
    }


def stage(registry: RegistryView, payload: bytes = b"numbers") -> Path:
    staging = registry.registry.staging()
    for name in ("model", "popular", "trending"):
        (staging / name).mkdir()
        (staging / name / "scores.npy").write_bytes(payload + name.encode())
        (staging / name / "manifest.json").write_text('{"files": {}}')
    return staging


def register(registry: RegistryView, algo: str = "popularity", ndcg: float = 0.1) -> int:
    return registry.register(stage(registry), **info(algo, ndcg)).number


@pytest.fixture
def notices() -> list[int]:
    return []


@pytest.fixture
def registry(engine: Engine, tmp_path: Path, notices: list[int]) -> RegistryView:
    return RegistryView(engine, tmp_path / "models", notices.append)


def activations(engine: Engine) -> list[tuple[int, int | None, str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ModelActivation.version,
                ModelActivation.previous_version,
                ModelActivation.action,
                ModelActivation.actor,
            ).order_by(ModelActivation.activation_id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_register_records_a_candidate_with_checksums(registry: RegistryView) -> None:
    assert registry.versions() == [] and registry.active_number() is None
    version = registry.register(stage(registry), **info())
    assert version.number == 1 and version.status == "candidate" and version.algo == "popularity"
    assert version.path == registry.root / "1" and version.path.is_dir()
    assert version.artifact_uri == (registry.root / "1").resolve().as_uri()
    assert set(version.checksums) == {
        f"{name}/{file}"
        for name in ("model", "popular", "trending")
        for file in ("scores.npy", "manifest.json")
    }
    assert version.created_at is not None and version.created_at.tzinfo is not None
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".staging")]
    assert registry.get(1) == version
    registry.registry.verify(version)
    assert register(registry) == 2
    assert registry.numbers() == [1, 2]
    with unit_of_work(registry.engine) as session:
        page, total = registry.registry.page(session, 0, 1)
    assert [v.number for v in page] == [2] and total == 2
    assert registry.active_number() is None  # registering never activates


def test_unknown_and_malformed_versions_are_not_found(registry: RegistryView) -> None:
    register(registry)
    for bad in ("0", "-1", "1; DROP TABLE model_versions", "../1", "", "01", "99999999999"):
        with pytest.raises(NotFound):
            version_number(bad)
    assert version_number(" 1 ") == 1
    with pytest.raises(NotFound):
        registry.get(2)
    with pytest.raises(NotFound):
        registry.activate(9)


def test_activate_retires_the_previous_one_and_notifies_after_commit(
    registry: RegistryView, engine: Engine, notices: list[int]
) -> None:
    first, second = register(registry), register(registry, "als", 0.2)
    assert registry.activate(first, actor="test").status == "active"
    assert registry.active_number() == first
    activated = registry.activate(second, actor="test")
    assert activated.status == "active" and activated.activated_at is not None
    assert registry.active_number() == second
    assert registry.get(first).status == "retired"
    assert registry.activate(second).number == second  # already active: nothing changes
    assert notices == [first, second]
    assert activations(engine) == [
        (1, None, "activate", "test"),
        (2, 1, "activate", "test"),
    ]
    assert registry.serving_candidates() == [second, first]


def test_an_activation_rolled_back_with_its_unit_of_work_changes_nothing(
    registry: RegistryView, engine: Engine, notices: list[int]
) -> None:
    """The caller's unit of work decides: no switch, no log row, no announcement."""
    first, second = register(registry), register(registry)
    registry.activate(first)

    def activate_then_fail() -> None:
        with unit_of_work(engine) as session:
            registry.registry.activate(session, second, actor="test")
            raise RuntimeError("the audit row could not be written")

    with pytest.raises(RuntimeError):
        activate_then_fail()
    assert registry.active_number() == first
    assert registry.get(second).status == "candidate"
    assert notices == [first]
    assert len(activations(engine)) == 1


def test_the_database_refuses_a_second_active_version(
    registry: RegistryView, engine: Engine
) -> None:
    first, second = register(registry), register(registry)
    registry.activate(first)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            update(ModelVersionRow).where(ModelVersionRow.version == second).values(status="active")
        )
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            update(ModelVersionRow).where(ModelVersionRow.version == second).values(status="bogus")
        )
    assert registry.active_number() == first
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM model_versions WHERE status = 'active'")
        ).scalar_one()
    assert count == 1


def test_rollback_walks_back_through_what_was_active(
    registry: RegistryView, engine: Engine, notices: list[int]
) -> None:
    with pytest.raises(Conflict, match="nothing to roll back"):
        registry.rollback()
    one, two, three = register(registry), register(registry), register(registry)
    registry.activate(one)
    with pytest.raises(Conflict, match="nothing to roll back to"):
        registry.rollback()
    registry.activate(two)
    registry.activate(three)
    assert registry.rollback(actor="ops").number == two
    assert registry.get(three).status == "retired"
    assert registry.rollback().number == one
    with pytest.raises(Conflict, match="nothing to roll back to"):
        registry.rollback()
    registry.activate(three)  # forward again: rollback returns to the one before it
    assert registry.rollback().number == one
    assert notices == [one, two, three, two, one, three, one]
    assert activations(engine)[3] == (2, 3, "rollback", "ops")


def test_rollback_skips_refused_versions(registry: RegistryView) -> None:
    one, two, three = register(registry), register(registry), register(registry)
    for version in (one, two, three):
        registry.activate(version)
    registry.refuse(two, "bad artifact")
    assert registry.rollback().number == one


def test_verify_catches_a_flipped_byte_and_a_missing_file(registry: RegistryView) -> None:
    version = registry.register(stage(registry), **info())
    registry.registry.verify(version)
    target = version.path / "model" / "scores.npy"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="fails its sha256"):
        registry.registry.verify(version)
    data[0] ^= 0x01
    target.write_bytes(bytes(data))
    registry.registry.verify(version)
    (version.path / "popular" / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        registry.registry.verify(version)


def test_refuse_falls_back_to_the_newest_good_version(
    registry: RegistryView, engine: Engine, notices: list[int]
) -> None:
    one, two, three = register(registry), register(registry), register(registry)
    for version in (one, two, three):
        registry.activate(version)
    (registry.root / str(two) / "model" / "scores.npy").write_bytes(b"corrupt")
    fallback = registry.refuse(three, "model/scores.npy fails its sha256 checksum")
    assert fallback is not None and fallback.number == one  # two does not verify either
    assert registry.active_number() == one
    refused = registry.get(three)
    assert refused.status == "refused" and "sha256" in (refused.status_reason or "")
    assert registry.get(two).status == "refused"
    assert activations(engine)[-1] == (1, 3, "refuse-fallback", "registry")
    assert notices[-1] == one
    assert registry.serving_candidates() == [one]
    # refusing something that is not active changes only its status
    four = register(registry)
    assert registry.refuse(four, "not wanted") is None
    assert registry.active_number() == one
    # refusing the last good one leaves nothing active
    assert registry.refuse(one, "gone") is None
    assert registry.active_number() is None


def test_activate_verifies_and_refuses_corrupt_versions(registry: RegistryView) -> None:
    good, bad = register(registry), register(registry)
    registry.activate(good)
    (registry.root / str(bad) / "trending" / "scores.npy").unlink()
    with pytest.raises(Conflict, match="fail verification"):
        registry.activate(bad)
    # the refusal is kept although the activation failed (keep_changes)
    assert registry.get(bad).status == "refused"
    assert registry.active_number() == good
    # a refused version activates again only once its artifacts verify
    with pytest.raises(Conflict, match="fail verification"):
        registry.activate(bad)
    (registry.root / str(bad) / "trending" / "scores.npy").write_bytes(b"numberstrending")
    assert registry.activate(bad).status == "active"
    assert registry.get(bad).status_reason == "verified again"


def test_a_failed_registration_registers_nothing(registry: RegistryView) -> None:
    staging = stage(registry)

    def register_then_fail() -> None:
        with unit_of_work(registry.engine) as session:
            registry.registry.register(session, staging, **info())
            assert (registry.root / "1").is_dir() and not staging.exists()
            raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        register_then_fail()
    assert registry.versions() == []
    assert staging.is_dir() and not (registry.root / "1").exists()  # renamed back
    registry.registry.discard(staging)
    assert not staging.exists()


KILLED_TRAINER = """
import os, signal, sys
from pathlib import Path
from bookrec.db.engine import make_engine
from bookrec.db.session import unit_of_work
from bookrec.model_registry.registry import ModelRegistry
import bookrec.model_registry.registry as module

registry = ModelRegistry(Path(sys.argv[2]))
staging = registry.staging()
(staging / "model").mkdir()
(staging / "model" / "a.npy").write_bytes(b"half")
if sys.argv[3] == "before-commit":
    os.kill(os.getpid(), signal.SIGKILL)
real_rename = os.rename
def rename_then_die(source, target):
    real_rename(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
module.os.rename = rename_then_die
with unit_of_work(make_engine(sys.argv[1])) as session:
    registry.register(
        session, staging, algo="popularity", params={}, data={}, metrics={}, gate={}, timings={}
    )
"""


@pytest.mark.parametrize("moment", ["before-commit", "after-rename"])
def test_a_trainer_killed_while_registering_leaves_nothing_registered(
    registry: RegistryView, database_url: str, moment: str
) -> None:
    script = textwrap.dedent(KILLED_TRAINER)
    process = subprocess.run(
        [sys.executable, "-c", script, database_url, str(registry.root), moment],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert process.returncode == -9, process.stderr
    assert registry.versions() == [] and registry.active_number() is None
    leftovers = list(registry.root.iterdir())
    assert len(leftovers) == 1
    # the next registration never reuses the leftover; a sweep removes it once stale
    assert register(registry) == (1 if moment == "before-commit" else 2)
    past = time.time() - 2 * 3600
    os.utime(leftovers[0], (past, past))
    assert registry.sweep() == leftovers
    assert [p.name for p in registry.root.iterdir()] == [str(registry.numbers()[0])]


def test_registering_sweeps_stale_staging_directories(registry: RegistryView) -> None:
    stale, fresh = stage(registry), stage(registry)
    past = time.time() - 2 * 3600
    os.utime(stale, (past, past))
    register(registry)
    assert not stale.exists() and fresh.exists()


def test_staging_paths_outside_the_root_are_refused(registry: RegistryView, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(ValueError, match="not a staging directory"):
        registry.register(outside, **info())
    with pytest.raises(ValueError, match="not a staging directory"):
        registry.registry.discard(outside)
    assert outside.is_dir()


def test_a_failing_notifier_never_fails_an_activation(engine: Engine, tmp_path: Path) -> None:
    def broken(_number: int) -> None:
        raise ConnectionError("redis is down")

    registry = RegistryView(engine, tmp_path / "models", broken)
    version = register(registry)
    assert registry.activate(version).status == "active"
    assert registry.active_number() == version


def test_redis_notifier_publishes_the_active_version(
    engine: Engine, tmp_path: Path, redis_server: redis.Redis, redis_prefix: str
) -> None:
    from tests.fixtures.redis import REDIS_URL

    assert redis_notifier(Settings(REDIS_URL=None)) is None
    settings = Settings(REDIS_URL=REDIS_URL, BOOKREC_REDIS_PREFIX=redis_prefix)
    subscriber = redis_server.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(f"{redis_prefix}models")
    registry = RegistryView(engine, tmp_path / "models", redis_notifier(settings))
    version = register(registry)
    registry.activate(version)
    deadline = time.monotonic() + 5
    message = None
    while message is None and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=0.5)
    subscriber.close()
    assert message is not None and message["data"] == str(version).encode()


def test_concurrent_activations_take_turns(registry: RegistryView, engine: Engine) -> None:
    """Activations from many threads: each completes, one version is active, and the log
    chains every switch to the one before it."""
    versions = [register(registry) for _ in range(4)]
    errors: list[BaseException] = []

    def flip(version: int) -> None:
        try:
            for _ in range(5):
                registry.activate(version)
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.status for v in registry.versions()].count("active") == 1
    log = activations(engine)
    assert log[-1][0] == registry.active_number()
    for before, after in itertools.pairwise(log):
        assert after[1] == before[0], log  # each switch saw the one before it
