"""`bookrec models list|activate|rollback` and `bookrec train` through the gate, as a user runs
them, on SQLite and PostgreSQL.

ALS is trained with factors and regularisation sized for the small data set (150 readers):
its goodbooks-scale defaults overfit 4,000 ratings and the gate rightly keeps them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.cli import invoke, invoke_json

JSON_FIELDS = {
    "version",
    "algo",
    "status",
    "metrics",
    "artifact_uri",
    "params",
    "data",
    "gate",
    "created_at",
    "activated_at",
    "checksums",
}


@pytest.fixture
def env(env: dict[str, str], small_dataset: Path) -> dict[str, str]:
    """The CLI environment on a migrated database holding the small data set."""
    values = env
    for args in (("db", "upgrade"), ("data", "import", str(small_dataset))):
        code, output = invoke(values, *args)
        assert code == 0, output
    return values


def listing(env: dict[str, str]) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = invoke_json(env, "models", "list", "--json")
    return parsed


def statuses(env: dict[str, str]) -> dict[int, tuple[str, str]]:
    return {v["version"]: (v["algo"], v["status"]) for v in listing(env)}


def test_train_popularity_then_als_then_rollback_and_activate(env: dict[str, str]) -> None:
    code, output = invoke(env, "models", "list")
    assert code == 0 and "no model versions yet" in output
    code, output = invoke(env, "train", "--algo", "popularity")
    assert code == 0, output
    assert "version 1 is active" in output and "first model" in output
    code, output = invoke(
        env, "train", "--algo", "als", "--factors", "32", "--regularization", "10"
    )
    assert code == 0, output
    assert "version 2 is active" in output
    assert statuses(env) == {1: ("popularity", "retired"), 2: ("als", "active")}

    code, output = invoke(env, "models", "rollback")
    assert code == 0, output
    assert "rolled back from version 2 to version 1 (popularity)" in output
    assert statuses(env) == {1: ("popularity", "active"), 2: ("als", "retired")}

    code, output = invoke(env, "models", "activate", "2")
    assert code == 0, output
    assert "version 2 (als) is active (was 1)" in output
    assert statuses(env) == {1: ("popularity", "retired"), 2: ("als", "active")}

    versions = listing(env)
    assert [v for v in versions if v["status"] == "active"] == [versions[1]]
    for version in versions:
        assert set(version) >= JSON_FIELDS
        assert version["artifact_uri"].startswith("file://")
        assert Path(version["artifact_uri"].removeprefix("file://")).is_dir()
        assert version["metrics"]["ndcg@10"] > 0
        assert version["data"]["ratings"] > 3000 and version["data"]["readers"] == 150
        assert version["gate"]["decision"] == "promote"
        assert version["checksums"] and all(len(d) == 64 for d in version["checksums"].values())
    assert versions[1]["gate"]["compared_with"] == 1
    assert versions[1]["params"]["factors"] == 32

    code, output = invoke(env, "models", "list")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split()[:4] == ["version", "algo", "status", "metric"]
    assert lines[2].split()[:3] == ["2", "als", "active"] and "ndcg@10" in lines[2]


def test_models_errors_are_clear_and_exit_1(env: dict[str, str]) -> None:
    code, output = invoke(env, "models", "rollback")
    assert code == 1 and "no model version is active" in output
    for bad in ("7", "abc", "-1"):
        code, output = invoke(env, "models", "activate", "--", bad)
        assert code == 1, output
        assert f"model version {bad} does not exist" in output
    invoke(env, "train", "--algo", "popularity")
    code, output = invoke(env, "models", "rollback")
    assert code == 1 and "nothing to roll back to" in output
    # a version whose artifacts were tampered with is refused, and stays so
    invoke(env, "train", "--algo", "popularity", "--no-activate")
    victim = next(Path(env["BOOKREC_VAR_DIR"], "models", "2", "popular").glob("*.npy"))
    flipped = bytearray(victim.read_bytes())
    flipped[-1] ^= 0x01
    victim.write_bytes(bytes(flipped))
    for _ in range(2):
        code, output = invoke(env, "models", "activate", "2")
        assert code == 1 and "fail verification" in output and "refused" in output
        assert "Traceback" not in output
    assert statuses(env) == {1: ("popularity", "active"), 2: ("popularity", "refused")}


def test_train_gate_flags(env: dict[str, str]) -> None:
    code, output = invoke(env, "train", "--if-missing", "--algo", "popularity")
    assert code == 0 and "version 1 is active" in output  # a fresh database: it trains
    code, output = invoke(env, "train", "--if-missing")
    assert code == 0 and "not training" in output
    code, output = invoke(env, "train", "--algo", "als")  # 64 factors overfit this data
    assert code == 0, output
    assert "evaluation gate: reject" in output and "version 1 stays active" in output
    forced = invoke_json(env, "train", "--algo", "als", "--force", "--json")
    assert forced["promoted"] and forced["status"] == "active" and forced["gate"]["forced"]
    code, output = invoke(env, "train", "--algo", "popularity", "--no-activate")
    assert code == 0 and "registered as a candidate" in output
    assert statuses(env) == {
        1: ("popularity", "retired"),
        2: ("als", "candidate"),
        3: ("als", "active"),
        4: ("popularity", "candidate"),
    }
