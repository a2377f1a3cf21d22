"""Every `bookrec` command on a freshly migrated, empty database, each in a process of its own
(as a user runs them): an answer and exit 0, 1 or 2, never a traceback.

`serve` and `worker` run until stopped; they are started and stopped by the serving and job
tests. `scheduler` is checked here in embedded mode, where it refuses to start with a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PASSWORD = "violet-harbour-tandem-41"
NO_DATA = "import a data set first"
NO_MODEL = "no model is active: run `bookrec train` first"


def bookrec(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `bookrec ARGS` in a new process; (exit code, everything it printed)."""
    process = subprocess.run(
        [sys.executable, "-m", "bookrec.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return process.returncode, process.stdout + process.stderr


Expectation = tuple[tuple[str, ...], int, str]  # (arguments, exit code, part of the output)


def expect(env: dict[str, str], expectations: list[Expectation]) -> None:
    """Run each command in turn; each ends as expected and prints no traceback."""
    for args, code, expected in expectations:
        exit_code, output = bookrec(env, *args)
        assert "Traceback" not in output, (args, output)
        assert exit_code == code, (args, exit_code, output)
        assert expected in output, (args, output)


@pytest.fixture
def empty(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of a migrated database that holds nothing yet."""
    return {
        **env,
        "BOOKREC_ENV": "test",
        "BOOKREC_ARGON2_TIME_COST": "1",
        "BOOKREC_ARGON2_MEMORY_KIB": "64",
        "BOOKREC_ARGON2_PARALLELISM": "1",
    }


@pytest.mark.slow
@pytest.mark.commands
def test_every_command_answers_on_an_empty_database(empty: dict[str, str], tmp_path: Path) -> None:
    users_csv = tmp_path / "users.csv"
    users_csv.write_text("user_id\n1\n2\n")
    (tmp_path / "empty-dir").mkdir()
    expect(empty, [(("db", "upgrade"), 0, "database schema is at head")])
    # On the empty database: each command fails or answers without changing anything, so
    # they run two at a time (each pays a whole process start).
    on_empty: list[Expectation] = [
        (("--help",), 0, "Usage"),
        (("models", "list"), 0, "no model versions yet"),
        (("models", "list", "--json"), 0, "[]"),
        (("models", "activate", "1"), 1, "model version 1 does not exist"),
        (("models", "activate", "latest"), 1, "model version latest does not exist"),
        (("models", "rollback"), 1, "nothing to roll back"),
        (("experiments", "list"), 0, "no experiments yet"),
        (("experiments", "list", "--json"), 0, "[]"),
        (("experiments", "show", "1"), 1, "experiment 1 does not exist"),
        (("train",), 1, "there are no ratings to train on"),
        (("train", "--algo", "nope"), 1, "unknown algorithm"),
        (("train", "--if-missing", "--algo", "popularity"), 1, "no ratings"),
        (("evaluate",), 1, NO_DATA),
        (("evaluate", "--algo", "nope"), 2, "unknown algorithm"),
        (("tune", "--algo", "ease", "--budget", "5s"), 1, NO_DATA),
        (("recommend", "1"), 1, NO_MODEL),
        (("recommend", "--batch", str(users_csv), "--out", str(tmp_path / "r.csv")), 1, NO_MODEL),
        (("recommend",), 2, "give either a USER id or --batch USERS.csv"),
        (("data", "download", "movielens"), 1, "the one available is goodbooks-10k"),
        (("data", "import", str(tmp_path / "missing")), 1, "not a directory"),
        (("data", "import", str(tmp_path / "empty-dir")), 1, "holds neither books.csv"),
        (
            ("data", "synth", "--readers", "5", "--ratings", "60", "--out", str(tmp_path / "s0")),
            1,
            "60 ratings are too few for 5 readers: each rates at least 19",
        ),
        (
            ("data", "synth", "--readers", "5", "--ratings", "200", "--out", str(tmp_path / "s")),
            0,
            "wrote 200 synthetic ratings by 5 readers",
        ),
        (("scheduler",), 1, "REDIS_URL is not set"),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda one: expect(empty, [one]), on_empty))
    # In order: each of these builds on the one before.
    expect(
        empty,
        [
            (
                ("users", "create-admin", "--email", "ops@example.com", "--password", PASSWORD),
                0,
                "admin ops@example.com created",
            ),
            (
                ("users", "create-admin", "--email", "ops@example.com", "--password", PASSWORD),
                1,
                "already exists",
            ),
            # with a little data, the same commands succeed
            (("data", "demo", "--readers", "30", "--ratings", "600"), 0, "synthetic"),
            (("train", "--algo", "popularity"), 0, "version 1 is active"),
            (("recommend", "1", "--k", "3", "--explain"), 0, "model 1 (popularity)"),
            (("recommend", "999999"), 1, "user 999999 is not in the data"),
            (
                ("recommend", "999999", "--allow-unknown"),
                0,
                "user 999999 is not known: showing the cold-start list",
            ),
            (
                ("recommend", "--batch", str(users_csv), "--out", str(tmp_path / "r.csv")),
                0,
                "wrote 20 recommendations for 2 readers",
            ),
            (("models", "rollback"), 1, "nothing to roll back to"),
            (("models", "activate", "1"), 0, "version 1 (popularity) is active"),
        ],
    )
