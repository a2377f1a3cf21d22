"""The database away: 503 problem+json with Retry-After, what needs no database still answers,
the pool recovers by itself, and a 2xx for a write means it was committed (issue 22).

The outage is made inside SQLAlchemy (every new connection refused, the pool emptied), so it
behaves the same on SQLite and PostgreSQL; `tests/reliability/` stops a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session
from tests.api.test_activity import sign_in

from bookrec.readers.models import Rating

API = "/api/v1"


class Outage:
    """Refuse every new connection of an engine, as a stopped database server would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.active = False
        event.listen(engine, "do_connect", self._connect)

    def _connect(self, *_: Any) -> None:
        if self.active:
            raise self.engine.dialect.loaded_dbapi.OperationalError("connection refused")

    def start(self) -> None:
        self.active = True
        self.engine.pool.dispose()  # the connections the server would have dropped

    def end(self) -> None:
        self.active = False


@pytest.fixture
def outage(client: TestClient) -> Iterator[Outage]:
    broken = Outage(client.app.state.bookrec.engine)  # type: ignore[attr-defined]
    yield broken
    broken.end()


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"].endswith("/database-unavailable")
    assert "try again" in body["detail"]
    # nothing about the server's address or driver reaches the client
    assert "127.0.0.1" not in body["detail"] and "psycopg" not in body["detail"]


def test_requests_needing_the_database_get_503_and_the_rest_answer(
    client: TestClient, outage: Outage, engine: Engine
) -> None:
    headers, reader_id = sign_in(client)
    assert client.get(f"{API}/recommendations/popular", params={"k": 3}).status_code == 200
    outage.start()

    assert_unavailable(client.put(f"{API}/me/ratings/3", json={"rating": 4}, headers=headers))
    assert_unavailable(client.get(f"{API}/me/ratings", headers=headers))
    assert_unavailable(
        client.post(f"{API}/auth/login", json={"email": "reader@example.org", "password": "x"})
    )
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "error"
    # what the worker holds in memory still answers
    assert client.get("/health/live").status_code == 200
    popular = client.get(f"{API}/recommendations/popular", params={"k": 5})
    assert popular.status_code == 200, popular.text
    assert len(popular.json()["items"]) == 5

    outage.end()
    rated = client.put(f"{API}/me/ratings/3", json={"rating": 4}, headers=headers)
    assert rated.status_code == 201, rated.text
    assert client.get("/health/ready").status_code == 200
    with Session(engine) as session:
        assert (
            session.scalar(
                select(Rating.rating).where(Rating.reader_id == reader_id, Rating.book_id == 3)
            )
            == 4
        )


def test_a_failed_commit_is_never_acknowledged(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction commits before the response goes out: a COMMIT that fails gives 503,
    never a 2xx for a write that was lost (nor a connection dropped after the 2xx)."""
    headers, reader_id = sign_in(client)
    dialect = client.app.state.bookrec.engine.dialect  # type: ignore[attr-defined]

    def lost_connection(dbapi_connection: Any) -> None:
        dbapi_connection.rollback()  # the server never got the COMMIT
        raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", lost_connection)
    assert_unavailable(client.put(f"{API}/me/ratings/7", json={"rating": 5}, headers=headers))
    monkeypatch.undo()
    with Session(engine) as session:
        assert session.scalar(select(Rating).where(Rating.reader_id == reader_id)) is None
    assert client.put(f"{API}/me/ratings/7", json={"rating": 5}, headers=headers).status_code == 201


def test_other_database_errors_stay_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the database being away is a 503: a failing statement is a bug, reported as one."""
    headers, _ = sign_in(client)
    dialect = client.app.state.bookrec.engine.dialect  # type: ignore[attr-defined]

    def bad_statement(dbapi_connection: Any) -> None:
        dbapi_connection.rollback()
        raise dialect.loaded_dbapi.ProgrammingError("syntax error at or near 'SELEC'")

    monkeypatch.setattr(dialect, "do_commit", bad_statement)
    raw = TestClient(client.app, raise_server_exceptions=False)  # the same worker, no new lifespan
    response = raw.put(f"{API}/me/ratings/7", json={"rating": 5}, headers=headers)
    assert response.status_code == 500
    assert response.json()["type"].endswith("/internal")


@pytest.mark.postgres
def test_the_pool_recovers_when_postgresql_drops_every_connection(
    client: TestClient, engine: Engine
) -> None:
    """A restart drops every pooled connection: the next requests reconnect by themselves."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to drop connections")
    headers, _ = sign_in(client)
    for _ in range(3):  # several pooled connections in use
        assert client.get(f"{API}/me/ratings", headers=headers).status_code == 200
    with engine.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert dropped >= 1
    for book_id in (3, 4, 5):
        response = client.put(f"{API}/me/ratings/{book_id}", json={"rating": 3}, headers=headers)
        assert response.status_code == 201, response.text
    assert client.get("/health/ready").status_code == 200
