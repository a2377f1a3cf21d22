"""Log output: what a logged error shows."""

from __future__ import annotations

import subprocess
import sys

import pytest

LOG_AN_ERROR = """
import structlog
from bookrec.observability.logging import configure_logging

configure_logging("INFO", "{fmt}")

def sign_in(password):
    raise ValueError("wrong password")

try:
    sign_in("violet-harbour-tandem-41")
except ValueError:
    structlog.get_logger().exception("login_failed")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_error_shows_its_traceback_but_not_local_variables(fmt: str) -> None:
    logged = subprocess.run(
        [sys.executable, "-c", LOG_AN_ERROR.format(fmt=fmt)],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    assert "login_failed" in logged and "wrong password" in logged and "sign_in" in logged
    assert "violet-harbour-tandem-41" not in logged
