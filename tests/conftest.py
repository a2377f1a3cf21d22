"""Shared fixtures: databases (SQLite and a real PostgreSQL), data sets, settings."""

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.datasets"]
