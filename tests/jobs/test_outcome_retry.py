"""A job's outcome is written across a short database outage, not lost with it (issue 22)."""

from __future__ import annotations

import pytest

from bookrec.errors import DatabaseUnavailable
from bookrec.jobs.runner import record_outcome


def test_the_outcome_is_retried_until_the_database_answers() -> None:
    attempts: list[int] = []

    def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise DatabaseUnavailable("the connection failed or was lost")
        return "written"

    assert record_outcome(write, patience_seconds=10) == "written"
    assert len(attempts) == 3


def test_it_gives_up_after_the_lease_and_leaves_the_job_to_the_reaper() -> None:
    def write() -> None:
        raise DatabaseUnavailable("the connection failed or was lost")

    with pytest.raises(DatabaseUnavailable):
        record_outcome(write, patience_seconds=0.6)


def test_other_errors_are_not_retried() -> None:
    attempts: list[int] = []

    def write() -> None:
        attempts.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        record_outcome(write, patience_seconds=10)
    assert len(attempts) == 1
