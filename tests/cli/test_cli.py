"""The command line as a user runs it, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tests.fixtures.cli import invoke


def test_import_train_recommend(env: dict[str, str], small_dataset: Path, tmp_path: Path) -> None:
    code, output = invoke(env, "db", "upgrade")
    assert code == 0, output
    code, output = invoke(env, "data", "import", str(small_dataset), "--json")
    assert code == 0, output
    report = json.loads(output[output.index("{") :])
    assert report["files"]["ratings.csv"] > 3000 and report["readers_created"] == 150
    code, output = invoke(env, "train", "--algo", "popularity")
    assert code == 0, output
    assert "version 1" in output
    code, output = invoke(env, "recommend", "3", "--k", "5", "--json")
    assert code == 0, output
    listing = json.loads(output[output.index("{") :])
    assert listing["model_version"] == 1 and len(listing["items"]) == 5

    users = tmp_path / "users.csv"
    users.write_text("user_id\n1\n2\n3\n424242\n")
    out = tmp_path / "recs.csv"
    code, output = invoke(env, "recommend", "--batch", str(users), "--k", "4", "--out", str(out))
    assert code == 0, output
    assert "1 unknown readers" in output
    with out.open() as handle:
        assert handle.readline() == "user_id,book_id,rank,score\n"
        rows = list(csv.reader(handle))
    assert len(rows) == 16
    assert [int(r[2]) for r in rows[:4]] == [1, 2, 3, 4]
    rated = _rated_books(small_dataset, user=1)
    assert not rated & {int(r[1]) for r in rows if r[0] == "1"}

    code, output = invoke(env, "train", "--if-missing")
    assert code == 0 and "not training" in output


def _rated_books(dataset: Path, user: int) -> set[int]:
    with (dataset / "ratings.csv").open() as handle:
        return {int(r["book_id"]) for r in csv.DictReader(handle) if int(r["user_id"]) == user}


def test_bad_file_exits_1_with_a_clear_message(env: dict[str, str], small_dataset: Path) -> None:
    invoke(env, "db", "upgrade")
    path = small_dataset / "ratings.csv"
    lines = path.read_text().splitlines()
    fields = lines[10].split(",")
    fields[2] = "7"
    lines[10] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    code, output = invoke(env, "data", "import", str(small_dataset))
    assert code == 1
    assert "ratings.csv, line 11, column 'rating': 7: must be 1 to 5" in " ".join(output.split())
    assert "Traceback" not in output


def test_train_without_data_and_recommend_without_model(env: dict[str, str]) -> None:
    invoke(env, "db", "upgrade")
    code, output = invoke(env, "train")
    assert code == 1 and "no ratings" in output
    code, output = invoke(env, "recommend", "1")
    assert code == 1 and "no model is active" in output
    code, output = invoke(env, "train", "--algo", "nope")
    assert code == 1 and "unknown algorithm" in output


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    code, output = invoke(env, "recommend")
    assert code == 2 and "USER id or --batch" in output


def test_bad_setting_is_explained(tmp_path: Path) -> None:
    code, output = invoke(
        {"DATABASE_URL": "mysql://x/y", "BOOKREC_VAR_DIR": str(tmp_path)}, "db", "upgrade"
    )
    assert code == 1 and "unsupported database" in output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_synth_writes_labelled_ratings(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "synth"
    code, output = invoke(
        env,
        "data",
        "synth",
        "--out",
        str(target),
        "--readers",
        "50",
        "--ratings",
        "2000",
        "--seed",
        "3",
    )
    assert code == 0, output
    assert "not real reader data" in (target / "SYNTHETIC.txt").read_text()
    with (target / "ratings.csv").open() as handle:
        assert handle.readline().strip() == "user_id,book_id,rating,timestamp"
        assert 1900 <= sum(1 for _ in handle) <= 2100
