"""Log output: what a logged error shows, and which format a terminal or a pipe gets."""

from __future__ import annotations

import json
import os
import pty
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


LOG_A_LINE = """
import structlog
from bookrec.observability.logging import configure_logging

configure_logging("INFO", "auto")
structlog.get_logger().info("model_loaded", version=3)
"""


def test_auto_format_is_json_in_a_pipe_and_readable_on_a_terminal() -> None:
    piped = subprocess.run(
        [sys.executable, "-c", LOG_A_LINE], capture_output=True, text=True, check=True
    ).stderr
    assert json.loads(piped)["event"] == "model_loaded"

    primary, secondary = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-c", LOG_A_LINE],
            stderr=secondary,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        shown = os.read(primary, 65536).decode()
    finally:
        os.close(primary)
        os.close(secondary)
    assert "model_loaded" in shown and "version" in shown
    assert not shown.lstrip().startswith("{")
