"""The web app over HTTP (no browser): the API tests' app on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import bare_client, client, loaded, settings  # noqa: F401
