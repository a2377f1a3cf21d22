"""What a new user meets in their first hour with the command line, as they meet it."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from tests.fixtures.cli import invoke

from bookrec.cli.common import NOT_INITIALISED


@pytest.fixture
def blank_env(blank_database_url: str, env: dict[str, str]) -> dict[str, str]:
    return {**env, "DATABASE_URL": blank_database_url}


def test_commands_before_db_upgrade_say_so_and_create_nothing(blank_env: dict[str, str]) -> None:
    for command in (["models", "list"], ["train"], ["recommend", "1"], ["data", "demo"]):
        code, output = invoke(blank_env, *command)
        assert code == 1, (command, output)
        assert NOT_INITIALISED in " ".join(output.split()), output
        assert "no such table" not in output and "Traceback" not in output
    url = blank_env["DATABASE_URL"]
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
    else:  # PostgreSQL: the database is there but holds no table of ours
        engine = create_engine(url)
        with engine.connect() as connection:
            tables = connection.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
            ).scalar_one()
        engine.dispose()
        assert tables == 0


def test_an_older_schema_asks_for_an_upgrade(blank_env: dict[str, str]) -> None:
    code, _ = invoke(blank_env, "db", "upgrade", "0001")
    assert code == 0
    code, output = invoke(blank_env, "models", "list")
    assert code == 1
    assert "schema is at revision 0001" in output and "run `bookrec db upgrade`" in output


def test_json_errors_are_json_on_stdout(
    blank_env: dict[str, str], env: dict[str, str], small_dataset: Path
) -> None:
    from tests.fixtures.cli import runner

    from bookrec.cli.main import app

    result = runner.invoke(app, ["models", "list", "--json"], env=blank_env)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"].startswith(NOT_INITIALISED)

    ratings = small_dataset / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 2)[0] + ",9," + lines[5].rsplit(",", 1)[1]
    ratings.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["data", "import", str(small_dataset), "--json"], env=env)
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["field"] == "rating" and error["file"] == "ratings.csv" and error["line"] == 6
    assert "must be 1 to 5" in error["error"]

    result = runner.invoke(app, ["train", "--algo", "nope", "--json"], env=env)
    assert result.exit_code == 1 and "unknown algorithm" in json.loads(result.stdout)["error"]


def test_unknown_parameters_are_named_with_what_is_accepted(env: dict[str, str]) -> None:
    code, output = invoke(env, "train", "--algo", "popularity", "--param", "foo=bar")
    flat = " ".join(output.split())
    assert code == 1
    assert "unknown parameter 'foo' for popularity; accepted: mode, score" in flat
    assert "errors.pydantic.dev" not in flat and "validation error" not in flat
    code, output = invoke(env, "train", "--algo", "als", "--factors", "many")
    flat = " ".join(output.split())
    assert code == 1 and "bad value for als parameter 'factors': 'many'" in flat


@pytest.fixture
def trained(env: dict[str, str], small_dataset: Path) -> dict[str, str]:
    code, output = invoke(env, "data", "import", str(small_dataset))
    assert code == 0, output
    code, output = invoke(env, "train", "--algo", "itemknn")
    assert code == 0, output
    return env


def test_an_unknown_reader_is_an_error_unless_allowed(trained: dict[str, str]) -> None:
    code, output = invoke(trained, "recommend", "999999999")
    assert code == 1 and "user 999999999 is not in the data" in " ".join(output.split())
    code, output = invoke(trained, "recommend", "999999999", "--allow-unknown", "--k", "3")
    assert code == 0 and "cold-start list" in output
    code, output = invoke(trained, "recommend", "1", "--k", "101")
    assert code == 2 and "100" in output


def test_batch_scores_are_rounded_as_in_single_lists(
    trained: dict[str, str], tmp_path: Path
) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id\n1\n2\n")
    recs = tmp_path / "recs.csv"
    code, output = invoke(trained, "recommend", "--batch", str(users), "--out", str(recs))
    assert code == 0, output
    with recs.open() as handle:
        scores = [row["score"] for row in csv.DictReader(handle)]
    assert scores and all(len(score.partition(".")[2]) <= 6 for score in scores)


def test_piped_lists_are_plain_rows_at_full_width(trained: dict[str, str]) -> None:
    code, output = invoke(trained, "recommend", "1", "--k", "3", "--explain")
    assert code == 0, output
    lines = output.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("user 1 — model 1"))
    assert lines[title + 1].split()[:2] == ["rank", "book_id"]
    assert [line.split()[0] for line in lines[title + 2 : title + 5]] == ["1", "2", "3"]
    assert "╭" not in output and "│" not in output


def test_evaluate_shows_progress_and_keeps_readers_out_of_the_report(
    trained: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code, output = invoke(trained, "evaluate", "--algo", "popularity,itemknn", "--out", str(out))
    assert code == 0, output
    for stage in ("fitting popularity…", "ranking popularity…", "fitting itemknn…"):
        assert stage in output
    assert "per_user" not in json.loads((out / "report.json").read_text())
    code, output = invoke(
        trained, "evaluate", "--algo", "popularity", "--out", str(out), "--per-reader"
    )
    assert code == 0, output
    assert "per_user" in json.loads((out / "report.json").read_text())


def test_version() -> None:
    code, output = invoke({}, "--version")
    assert code == 0 and output.startswith("bookrec ")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_demo_deletes_the_generated_csv_once_imported(env: dict[str, str]) -> None:
    code, output = invoke(env, "data", "demo", "--readers", "40", "--ratings", "800")
    assert code == 0, output
    generated = Path(env["BOOKREC_VAR_DIR"]) / "synthetic" / "ratings.csv"
    assert not generated.exists() and "--keep-csv keeps it" in " ".join(output.split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_on_a_busy_port_fails_at_once(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bookrec.cli.main", "serve", "--port", str(port)],
            env={**env, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert f"port {port} is in use on 127.0.0.1; set --port or BOOKREC_PORT" in message
    assert "embedded training worker started" not in message
