"""Shared fixtures: databases (SQLite and a real PostgreSQL), Redis, data sets, settings."""

import pytest
import structlog

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
