"""Shared fixtures: databases (SQLite and a real PostgreSQL), Redis, data sets, settings."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.datasets",
    "tests.fixtures.movielens",
    "tests.fixtures.redis",
]
