"""A reader's ratings, to-read shelf and events over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from tests.api.test_auth import PASSWORD, assert_unauthorized, bearer

from bookrec.api.routers import activity
from bookrec.catalog.models import Book
from bookrec.config import Settings
from bookrec.readers import service
from bookrec.readers.models import Event, Rating, Reader, ShelfItem

API = "/api/v1"
UNKNOWN_BOOK = 999_999
PARIS = timezone(timedelta(hours=1))


def sign_in(client: TestClient, email: str = "reader@example.org") -> tuple[dict[str, str], int]:
    """Register and log in a reader: (auth headers, reader id)."""
    body = {"email": email, "password": PASSWORD}
    created = client.post(f"{API}/auth/register", json=body)
    assert created.status_code == 201, created.text
    tokens = client.post(f"{API}/auth/login", json=body).json()
    return bearer(tokens["access_token"]), int(created.json()["reader_id"])


@pytest.fixture
def me(client: TestClient) -> tuple[dict[str, str], int]:
    return sign_in(client)


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    if field is not None:
        fields = [problem.get("field")] + [e["field"] for e in problem.get("errors") or []]
        assert field in fields, problem
    return problem


def book(engine: Engine, book_id: int) -> Book:
    with Session(engine) as session:
        found = session.get(Book, book_id)
    assert found is not None
    return found


def count(engine: Engine, model: Any, reader_id: int) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(model).where(model.reader_id == reader_id)
        return int(session.scalar(query) or 0)


def test_every_activity_route_needs_a_login(client: TestClient) -> None:
    routes = [r for r in activity.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 8
    for route in routes:
        path = API + route.path.replace("{book_id}", "1")
        for method in route.methods:
            assert_unauthorized(client.request(method, path, json={"rating": 3}))
            garbage = client.request(method, path, json={"rating": 3}, headers=bearer("garbage"))
            assert_unauthorized(garbage)


def test_rate_change_and_unrate_a_book(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    expected = book(engine, 3)
    before = int(time.time())

    created = client.put(f"{API}/me/ratings/3", json={"rating": 4}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["book_id"] == 3 and body["rating"] == 4
    assert (body["title"], body["authors"]) == (expected.title, expected.authors)
    assert body["rated_at"].endswith("Z")  # ISO 8601 UTC, as every time in JSON
    assert before <= _unix(body["rated_at"]) <= int(time.time())

    changed = client.put(f"{API}/me/ratings/3", json={"rating": 2}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["rating"] == 2
    with Session(engine) as session:
        stored = session.get(Rating, (reader_id, 3))
        assert stored is not None and stored.rating == 2

    listed = client.get(f"{API}/me/ratings", headers=headers).json()
    assert listed["total"] == 1 and listed["items"] == [changed.json()]

    for _ in range(2):  # idempotent: the second delete finds nothing and still succeeds
        deleted = client.delete(f"{API}/me/ratings/3", headers=headers)
        assert deleted.status_code == 204 and deleted.content == b""
    assert count(engine, Rating, reader_id) == 0
    assert client.get(f"{API}/me/ratings", headers=headers).json()["total"] == 0


def test_rating_an_unknown_book_is_404(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    response = client.put(f"{API}/me/ratings/{UNKNOWN_BOOK}", json={"rating": 5}, headers=headers)
    problem = assert_problem(response, 404)
    assert str(UNKNOWN_BOOK) in problem["detail"]
    assert_problem(client.put(f"{API}/me/shelf/{UNKNOWN_BOOK}", headers=headers), 404)
    assert count(engine, Rating, reader_id) == count(engine, ShelfItem, reader_id) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "body.rating"),
        ({"rating": 6}, "body.rating"),
        ({"rating": 4.5}, "body.rating"),
        ({"rating": "5"}, "body.rating"),
        ({"rating": True}, "body.rating"),
        ({"rating": None}, "body.rating"),
        ({}, "body.rating"),
        ({"rating": 3, "stars": 3}, "body.stars"),
    ],
)
def test_a_bad_rating_is_422_naming_the_field(
    client: TestClient,
    engine: Engine,
    me: tuple[dict[str, str], int],
    body: dict[str, Any],
    field: str,
) -> None:
    headers, reader_id = me
    response = client.put(f"{API}/me/ratings/3", json=body, headers=headers)
    assert assert_problem(response, 422, field)["errors"][0]["field"] == field
    assert count(engine, Rating, reader_id) == 0


def test_bad_book_ids_in_paths_are_422(client: TestClient, me: tuple[dict[str, str], int]) -> None:
    headers, _ = me
    for path in ("/me/ratings/0", "/me/ratings/abc", "/me/shelf/-1", "/me/shelf/99999999999"):
        assert_problem(
            client.put(API + path, json={"rating": 3}, headers=headers), 422, "path.book_id"
        )
        assert_problem(client.delete(API + path, headers=headers), 422, "path.book_id")


def test_ratings_page_newest_first(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    books = [5, 9, 2, 14, 7]
    for stars, book_id in enumerate(books, start=1):
        response = client.put(
            f"{API}/me/ratings/{book_id}", json={"rating": stars}, headers=headers
        )
        assert response.status_code == 201
    # distinct times, rated in list order, so newest first is the reversed list
    with Session(engine) as session, session.begin():
        for position, book_id in enumerate(books):
            session.execute(
                update(Rating)
                .where(Rating.reader_id == reader_id, Rating.book_id == book_id)
                .values(rated_at=1_700_000_000 + position)
            )

    first = client.get(f"{API}/me/ratings", params={"size": 2}, headers=headers).json()
    assert (first["page"], first["size"], first["total"]) == (1, 2, 5)
    assert [r["book_id"] for r in first["items"]] == [7, 14]
    assert first["items"][0]["title"] == book(engine, 7).title
    third = client.get(f"{API}/me/ratings", params={"size": 2, "page": 3}, headers=headers).json()
    assert [r["book_id"] for r in third["items"]] == [5]
    everything = client.get(f"{API}/me/ratings", params={"size": 100}, headers=headers).json()
    assert [r["book_id"] for r in everything["items"]] == books[::-1]
    assert [r["rating"] for r in everything["items"]] == [5, 4, 3, 2, 1]
    beyond = client.get(f"{API}/me/ratings", params={"page": 9}, headers=headers).json()
    assert beyond["items"] == [] and beyond["total"] == 5

    for params in ({"size": 101}, {"size": 0}, {"page": 0}):
        response = client.get(f"{API}/me/ratings", params=params, headers=headers)
        assert_problem(response, 422, f"query.{next(iter(params))}")
        assert_problem(client.get(f"{API}/me/shelf", params=params, headers=headers), 422)


def test_shelf_add_list_and_remove(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    added = client.put(f"{API}/me/shelf/8", headers=headers)
    assert added.status_code == 201, added.text
    item = added.json()
    assert item["book_id"] == 8 and item["title"] == book(engine, 8).title
    assert abs(_unix(item["added_at"]) - time.time()) < 60

    again = client.put(f"{API}/me/shelf/8", headers=headers)
    assert again.status_code == 200 and again.json() == item  # kept its first time
    assert client.put(f"{API}/me/shelf/4", headers=headers).status_code == 201
    with Session(engine) as session, session.begin():
        session.execute(
            update(ShelfItem)
            .where(ShelfItem.reader_id == reader_id, ShelfItem.book_id == 8)
            .values(added_at=_unix(item["added_at"]) - 10)
        )

    shelf = client.get(f"{API}/me/shelf", headers=headers).json()
    assert shelf["total"] == 2 and [s["book_id"] for s in shelf["items"]] == [4, 8]
    page = client.get(f"{API}/me/shelf", params={"size": 1, "page": 2}, headers=headers).json()
    assert [s["book_id"] for s in page["items"]] == [8] and page["total"] == 2

    for _ in range(2):
        assert client.delete(f"{API}/me/shelf/8", headers=headers).status_code == 204
    assert client.delete(f"{API}/me/shelf/{UNKNOWN_BOOK}", headers=headers).status_code == 204
    assert [
        s["book_id"] for s in client.get(f"{API}/me/shelf", headers=headers).json()["items"]
    ] == [4]
    assert count(engine, ShelfItem, reader_id) == 1


def test_another_reader_cannot_see_or_touch_mine(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    mine, reader_id = me
    assert client.put(f"{API}/me/ratings/6", json={"rating": 5}, headers=mine).status_code == 201
    assert client.put(f"{API}/me/shelf/6", headers=mine).status_code == 201
    theirs, _ = sign_in(client, "someone-else@example.org")

    for path in ("/me/ratings", "/me/shelf"):
        assert client.get(API + path, headers=theirs).json() == {
            "items": [],
            "page": 1,
            "size": 20,
            "total": 0,
        }
        assert client.delete(API + path + "/6", headers=theirs).status_code == 204
    assert client.put(f"{API}/me/ratings/6", json={"rating": 1}, headers=theirs).status_code == 201

    ratings = client.get(f"{API}/me/ratings", headers=mine).json()["items"]
    assert [(r["book_id"], r["rating"]) for r in ratings] == [(6, 5)]
    assert count(engine, ShelfItem, reader_id) == 1


def test_concurrent_identical_ratings_create_once(engine: Engine, loaded: Settings) -> None:
    """A second writer waits for the first, then updates instead of failing on the key."""
    with Session(engine) as session, session.begin():
        reader = Reader()
        session.add(reader)
        session.flush()
        reader_id = reader.reader_id

    outcome: dict[str, Any] = {}

    def second_writer() -> None:
        with Session(engine) as session, session.begin():
            outcome["second"] = service.rate_book(session, reader_id, 12, 5)

    with Session(engine) as first, first.begin():
        _, created = service.rate_book(first, reader_id, 12, 5)
        assert created
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second writer should wait for the first to commit"
    thread.join(30)
    assert not thread.is_alive()
    rating, created = outcome["second"]
    assert not created and rating.rating == 5
    assert count(engine, Rating, reader_id) == 1


def test_concurrent_identical_puts_over_http(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    statuses: list[int] = []

    def put() -> None:
        response = client.put(f"{API}/me/ratings/13", json={"rating": 3}, headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 5 + [201]
    assert count(engine, Rating, reader_id) == 1


def test_events_are_recorded(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    context = {"list": "for-you", "position": 3, "model_version": "2", "score": 0.5, "top": True}
    events = [
        {"kind": "impression", "book_id": 1, "context": context},
        {"kind": "click", "book_id": 1, "occurred_at": int(an_hour_ago.timestamp())},
        {"kind": "view", "book_id": 2, "occurred_at": an_hour_ago.isoformat()},
        {"kind": "view", "book_id": 2, "occurred_at": None},
        # without an offset a time is UTC; with one, it is converted
        {"kind": "view", "book_id": 3, "occurred_at": an_hour_ago.replace(tzinfo=None).isoformat()},
        {"kind": "view", "book_id": 3, "occurred_at": an_hour_ago.astimezone(PARIS).isoformat()},
    ]
    before = int(time.time())
    response = client.post(f"{API}/events", json={"events": events}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 6}

    with Session(engine) as session:
        stored = session.scalars(
            select(Event).where(Event.reader_id == reader_id).order_by(Event.event_id)
        ).all()
    assert [(e.kind, e.book_id) for e in stored] == [
        ("impression", 1),
        ("click", 1),
        ("view", 2),
        ("view", 2),
        ("view", 3),
        ("view", 3),
    ]
    assert stored[0].context == context and stored[1].context is None
    assert {e.occurred_at for e in stored[1:3] + stored[4:]} == {int(an_hour_ago.timestamp())}
    assert before <= stored[0].occurred_at <= int(time.time())
    assert before <= stored[3].occurred_at <= int(time.time())


def _event(**overrides: Any) -> dict[str, Any]:
    return {"kind": "view", "book_id": 1, **overrides}


def _ago(**delta: float) -> int:
    return int((datetime.now(UTC) - timedelta(**delta)).timestamp())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "body.events"),
        ({"events": [_event()] * 101}, "body.events"),
        ({}, "body.events"),
        ({"events": [_event(), _event(kind="purchase")]}, "body.events.1.kind"),
        ({"events": [_event(book_id=0)]}, "body.events.0.book_id"),
        ({"events": [_event(weight=2)]}, "body.events.0.weight"),
        ({"events": [_event(context={str(i): i for i in range(17)})]}, "body.events.0.context"),
        ({"events": [_event(context={"list": ["a", "b"]})]}, "body.events.0.context.list"),
        ({"events": [_event(context={"nested": {"a": 1}})]}, "body.events.0.context.nested"),
        ({"events": [_event(context={"note": "x" * 1100})]}, "body.events.0.context"),
        ({"events": [_event(context="for-you")]}, "body.events.0.context"),
        ({"events": [_event(occurred_at="yesterday")]}, "body.events.0.occurred_at"),
        ({"events": [_event(), _event(occurred_at=_ago(days=8))]}, "events[1].occurred_at"),
        ({"events": [_event(occurred_at=_ago(minutes=-10))]}, "events[0].occurred_at"),
        ({"events": [_event(occurred_at="1999-12-31T23:59:59Z")]}, "events[0].occurred_at"),
        (
            {"events": [_event(), _event(), _event(), _event(book_id=UNKNOWN_BOOK)]},
            "events[3].book_id",
        ),
    ],
)
def test_bad_event_batches_write_nothing(
    client: TestClient,
    engine: Engine,
    me: tuple[dict[str, str], int],
    body: dict[str, Any],
    field: str,
) -> None:
    headers, reader_id = me
    response = client.post(f"{API}/events", json=body, headers=headers)
    assert_problem(response, 422, field)
    assert count(engine, Event, reader_id) == 0


def test_event_batch_names_every_offender(
    client: TestClient, engine: Engine, me: tuple[dict[str, str], int]
) -> None:
    headers, reader_id = me
    events = [_event(), _event(book_id=UNKNOWN_BOOK), _event(occurred_at=_ago(days=30))]
    events += [_event(book_id=UNKNOWN_BOOK + 1)]
    problem = assert_problem(
        client.post(f"{API}/events", json={"events": events}, headers=headers), 422
    )
    assert problem["field"] == "events[1].book_id"
    assert problem["detail"] == f"events[1].book_id: book {UNKNOWN_BOOK} does not exist"
    assert [e["field"] for e in problem["errors"]] == [
        "events[1].book_id",
        "events[2].occurred_at",
        "events[3].book_id",
    ]
    assert count(engine, Event, reader_id) == 0


def test_event_time_window_edges(client: TestClient, me: tuple[dict[str, str], int]) -> None:
    headers, _ = me
    accepted = [_event(occurred_at=_ago(days=6, hours=23)), _event(occurred_at=_ago(minutes=-4))]
    response = client.post(f"{API}/events", json={"events": accepted}, headers=headers)
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    batch = {"events": [_event(context={"k": "v"})] * 100}
    assert client.post(f"{API}/events", json=batch, headers=headers).json() == {"accepted": 100}


def test_export_holds_what_the_reader_did(
    client: TestClient, me: tuple[dict[str, str], int]
) -> None:
    headers, _ = me
    client.put(f"{API}/me/ratings/10", json={"rating": 4}, headers=headers)
    client.put(f"{API}/me/shelf/11", headers=headers)
    context = {"list": "similar", "position": 1}
    event = {"kind": "click", "book_id": 10, "context": context}
    client.post(f"{API}/events", json={"events": [event]}, headers=headers)

    export = client.get(f"{API}/me/export", headers=headers).json()
    assert [(r["book_id"], r["rating"]) for r in export["ratings"]] == [(10, 4)]
    assert [s["book_id"] for s in export["shelf"]] == [11]
    assert [(e["kind"], e["book_id"], e["context"]) for e in export["events"]] == [
        ("click", 10, context)
    ]


def _unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())
