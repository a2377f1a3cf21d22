"""Shared fixtures: databases (SQLite and a real PostgreSQL), Redis, data sets, settings."""

from typing import Any

import pytest
import structlog

from bookrec.observability import logging as logging_setup
from bookrec.observability.logging import configure_logging

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.datasets",
    "tests.fixtures.movielens",
    "tests.fixtures.redis",
]


def pytest_configure(config: pytest.Config) -> None:
    """Log as a served worker does (`api.server.served_app`), so an app built by a test logs
    JSON lines instead of structlog's default rich tracebacks (seconds per logged error).
    Loggers are not cached, so `structlog.testing.capture_logs` sees every logger."""
    configure_logging("INFO", "json")
    structlog.configure(cache_logger_on_first_use=False)
    # A command run in-process (typer's CliRunner) configures logging as `bookrec` does, with
    # loggers cached on first use: they would stay cached for every later test in the
    # process, out of `capture_logs`' reach. Commands run here keep them uncached.
    configured = logging_setup.configure_logging

    def configure_uncached(*args: Any, **kwargs: Any) -> None:
        configured(*args, **kwargs)
        structlog.configure(cache_logger_on_first_use=False)

    logging_setup.configure_logging = configure_uncached  # type: ignore[assignment]
