"""An admin adds, edits and deletes books over HTTP; a new book is recommendable at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from tests.fixtures.accounts import signed_in
from tests.fixtures.redis import REDIS_URL
from tests.jobs.processes import wait_for

from bookrec.accounts.audit import AuditEvent
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.model_registry.registry import ModelRegistry
from bookrec.readers.models import Rating, Reader
from bookrec.readers.snapshot import load_snapshot
from bookrec.training.service import train

API = "/api/v1"
NEW_BOOK = {
    "title": "Quillmoss and the Copper Lantern",
    "authors": ["J.K. Rowling"],
    "original_publication_year": 2024,
    "language_code": "eng",
    "tags": ["wizard-school"],
    "isbn": "0-306-40615-2",
    "image_url": "https://covers.example.org/quillmoss.jpg",
}


@pytest.fixture
def admin(client: TestClient, engine: Engine, loaded: Settings) -> dict[str, str]:
    return signed_in(client, engine, loaded, "books-admin@example.org", role="admin")


@pytest.fixture
def other_worker(loaded: Settings) -> Iterator[TestClient]:
    """A second app on the same database, as a second server process would be."""
    with TestClient(create_app(loaded)) as second:
        yield second


def audit_actions(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.target).order_by(AuditEvent.event_id)
        )
        return [(a, t) for a, t in rows if a.startswith("book.")]


def test_a_new_book_is_similar_at_once_on_every_worker(
    client: TestClient, other_worker: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    existing_tag = client.get(f"{API}/tags", params={"size": 1}).json()["items"][0]["name"]
    body = {**NEW_BOOK, "tags": [existing_tag, "wizard-school"]}
    # the other worker has answered before the book exists (its cards are loaded)
    assert other_worker.get(f"{API}/books/2/similar").status_code == 200
    created = client.post(f"{API}/books", json=body, headers=admin)
    assert created.status_code == 201, created.text
    book = created.json()
    assert book["book_id"] > 300 and book["author_names"] == ["J.K. Rowling"]
    assert book["tags"] == [existing_tag, "wizard-school"] and book["isbn"] == "0306406152"
    assert other_worker.get(f"{API}/books/{book['book_id']}").json()["title"] == NEW_BOOK["title"]
    similar = other_worker.get(f"{API}/books/{book['book_id']}/similar", params={"k": 5})
    assert similar.status_code == 200, similar.text
    items = similar.json()["items"]
    assert len(items) == 5 and book["book_id"] not in [i["book_id"] for i in items]
    assert sum("Rowling" in item["authors"] for item in items) >= 3, items
    # a new tag name became a tag that now counts one book
    tags = {t["name"]: t["book_count"] for t in client.get(f"{API}/tags").json()["items"]}
    assert tags["wizard-school"] == 1
    assert audit_actions(engine) == [("book.create", f"book:{book['book_id']}")]


def test_patch_changes_only_what_is_sent_and_search_follows(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    book_id = client.post(f"{API}/books", json=NEW_BOOK, headers=admin).json()["book_id"]
    patched = client.patch(
        f"{API}/books/{book_id}",
        json={"title": "Brambleworth Chronicles", "tags": ["lanterns"]},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Brambleworth Chronicles"
    assert patched.json()["tags"] == ["lanterns"]
    assert patched.json()["author_names"] == ["J.K. Rowling"]  # not sent: unchanged
    for typo in ("bramblewerth chronicles", "brambleworth chronicels", "bramblewarth"):
        found = client.get(f"{API}/books", params={"q": typo}).json()["items"]
        assert found[0]["book_id"] == book_id, typo  # a one-letter typo, first
    assert client.get(f"{API}/books", params={"q": "quillmoss"}).json()["total"] == 0
    assert client.get(f"{API}/books/suggest", params={"q": "brambl"}).json()[0]["book_id"] == (
        book_id
    )
    actions = audit_actions(engine)
    assert actions[-1] == ("book.update", f"book:{book_id}")


def test_bad_input_names_the_field_and_duplicate_isbn_conflicts(
    client: TestClient, admin: dict[str, str]
) -> None:
    for body, field in [
        ({**NEW_BOOK, "isbn": "12345"}, "isbn"),
        ({**NEW_BOOK, "title": ""}, "title"),
        ({**NEW_BOOK, "original_publication_year": 3000}, "original_publication_year"),
        ({**NEW_BOOK, "image_url": "not a url"}, "image_url"),
        ({**NEW_BOOK, "authors": ["Rowling, J.K."]}, "authors"),
        ({**NEW_BOOK, "shelf": "x"}, "shelf"),
        ({k: v for k, v in NEW_BOOK.items() if k != "title"}, "title"),
        ({**NEW_BOOK, "language_code": "klingon!"}, "language_code"),
    ]:
        response = client.post(f"{API}/books", json=body, headers=admin)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in response.text, response.text
    first = client.post(f"{API}/books", json=NEW_BOOK, headers=admin)
    assert first.status_code == 201
    again = client.post(f"{API}/books", json={**NEW_BOOK, "isbn": "0306406152"}, headers=admin)
    assert again.status_code == 409 and "isbn" in again.json()["detail"]
    real = client.get(f"{API}/books/1").json()
    clash = client.patch(
        f"{API}/books/{first.json()['book_id']}", json={"isbn13": real["isbn13"]}, headers=admin
    )
    assert clash.status_code == 409 and "book 1" in clash.json()["detail"]
    assert client.get(f"{API}/books", params={"q": "quillmoss"}).json()["total"] == 1


def test_delete_hides_the_book_everywhere_and_keeps_ratings(
    client: TestClient,
    other_worker: TestClient,
    admin: dict[str, str],
    engine: Engine,
    loaded: Settings,
) -> None:
    similar_before = other_worker.get(f"{API}/books/2/similar", params={"k": 20}).json()
    gone = similar_before["items"][0]["book_id"]
    reader = signed_in(client, engine, loaded, "books-reader@example.org")
    rated = client.put(f"{API}/me/ratings/{gone}", json={"rating": 5}, headers=reader)
    assert rated.status_code < 300, rated.text
    total_before = client.get(f"{API}/books").json()["total"]
    title = client.get(f"{API}/books/{gone}").json()["title"]
    assert gone in [
        b["book_id"] for b in client.get(f"{API}/books", params={"q": title}).json()["items"]
    ]
    assert client.delete(f"{API}/books/{gone}", headers=admin).status_code == 204
    assert client.get(f"{API}/books/{gone}").status_code == 404
    assert other_worker.get(f"{API}/books/{gone}/similar").status_code == 404
    similar_after = other_worker.get(f"{API}/books/2/similar", params={"k": 20}).json()
    assert gone not in [item["book_id"] for item in similar_after["items"]]
    assert len(similar_after["items"]) == 20
    assert client.get(f"{API}/books").json()["total"] == total_before - 1
    found = client.get(f"{API}/books", params={"q": title}).json()["items"]
    assert gone not in [b["book_id"] for b in found]
    assert client.delete(f"{API}/books/{gone}", headers=admin).status_code == 404
    assert (
        client.patch(f"{API}/books/{gone}", json={"title": "x"}, headers=admin).status_code == 404
    )
    with Session(engine) as session:
        assert session.scalar(select(Rating.rating).where(Rating.book_id == gone)) == 5
    assert audit_actions(engine)[-1] == ("book.delete", f"book:{gone}")
    # a new book never takes a deleted book's id
    created = client.post(f"{API}/books", json=NEW_BOOK, headers=admin).json()
    assert created["book_id"] > 300


def test_only_admins_manage_books(client: TestClient, engine: Engine, loaded: Settings) -> None:
    reader = signed_in(client, engine, loaded, "plain-reader@example.org")
    for method, path in [("post", "/books"), ("patch", "/books/1"), ("delete", "/books/1")]:
        anonymous = client.request(method, f"{API}{path}", json=NEW_BOOK)
        assert anonymous.status_code == 401, (method, anonymous.text)
        assert anonymous.headers["content-type"] == "application/problem+json"
        as_reader = client.request(method, f"{API}{path}", json=NEW_BOOK, headers=reader)
        assert as_reader.status_code == 403, (method, as_reader.text)
    assert client.get(f"{API}/books/1").status_code == 200


def test_training_after_edits_leaves_deleted_books_out_and_takes_new_ones_in(
    client: TestClient, admin: dict[str, str], engine: Engine, loaded: Settings
) -> None:
    reader = signed_in(client, engine, loaded, "trainer-reader@example.org")
    assert client.put(f"{API}/me/ratings/4", json={"rating": 4}, headers=reader).status_code < 300
    assert client.delete(f"{API}/books/4", headers=admin).status_code == 204
    added = client.post(f"{API}/books", json=NEW_BOOK, headers=admin).json()["book_id"]
    result = train(engine, ModelRegistry(loaded.models_dir), "content", settings=loaded)
    assert result.version.algo == "content"
    with engine.connect() as connection:
        snapshot = load_snapshot(connection)
    items = snapshot.catalog.items.ids.tolist()
    assert 4 not in items and added in items
    assert snapshot.summary()["ratings"] > 0


def most_popular_book(client: TestClient) -> dict[str, object]:
    top = client.get(f"{API}/recommendations/popular", params={"k": 1}).json()["items"][0]
    book: dict[str, object] = client.get(f"{API}/books/{top['book_id']}").json()
    assert book["tags"], book  # the small data set tags its first 60 books
    return book


def a_fan_of_the_most_popular_book(
    client: TestClient, engine: Engine, loaded: Settings
) -> tuple[dict[str, object], int, dict[str, str]]:
    """The most popular book, its id, and the headers of a new reader who rated it 5★."""
    popular = most_popular_book(client)
    popular_id = int(popular["book_id"])  # type: ignore[call-overload]
    reader = signed_in(client, engine, loaded, "fan@example.org")
    rated = client.put(f"{API}/me/ratings/{popular_id}", json={"rating": 5}, headers=reader)
    assert rated.is_success, rated.text
    return popular, popular_id, reader


def like_of(book: dict[str, object]) -> dict[str, object]:
    """A new book by the same authors with the same tags as `book`."""
    return {
        "title": "Quillmoss and the Copper Lantern",
        "authors": book["author_names"],
        "tags": book["tags"],
        "original_publication_year": 2024,
    }


def ids_of(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["book_id"] for item in response.json()["items"]]


def item_of(response: httpx.Response, book_id: int) -> dict[str, Any]:
    found = [item for item in response.json()["items"] if item["book_id"] == book_id]
    assert found, (book_id, response.json())
    item: dict[str, Any] = found[0]
    return item


def test_a_new_book_joins_other_books_similar_lists_and_readers_lists(
    client: TestClient,
    other_worker: TestClient,
    admin: dict[str, str],
    engine: Engine,
    loaded: Settings,
) -> None:
    popular, popular_id, reader = a_fan_of_the_most_popular_book(client, engine, loaded)
    mine = {"k": 10, "explain": "true"}
    before = client.get(f"{API}/recommendations/me", params=mine, headers=reader)
    # the other worker has its cards and lists before the book exists
    other_before = other_worker.get(f"{API}/recommendations/me", params=mine, headers=reader)
    assert ids_of(other_before) == ids_of(before)

    new_id = client.post(f"{API}/books", json=like_of(popular), headers=admin).json()["book_id"]

    # among the popular book's similar books, with reasons, on both workers at once
    for worker in (client, other_worker):
        similar = worker.get(f"{API}/books/{popular_id}/similar", params={"k": 10})
        assert new_id in ids_of(similar)
        reasons = item_of(similar, new_id)["reasons"]
        assert reasons[0] == "new in the catalogue", reasons
        assert any(r.startswith("also by ") for r in reasons), reasons
        assert any(r.startswith("shares tags: ") for r in reasons), reasons
        scores = [item["score"] for item in similar.json()["items"]]
        assert scores == sorted(scores, reverse=True)  # one scale: the model's order holds
    # in the reader's own list at once on the worker that wrote it, with the reason
    after = client.get(f"{API}/recommendations/me", params=mine, headers=reader)
    assert new_id in ids_of(after) and len(ids_of(after)) == 10
    reason = item_of(after, new_id)["reasons"][0]
    assert reason == f'new in the catalogue; like "{popular["title"]}", which you rated 5★'
    # at most two of ten places, the rest the model's list in its order
    assert [b for b in ids_of(after) if b != new_id] == ids_of(before)[:9]
    # the other worker: after its next catalogue tick (driven here instead of waited for)
    other_worker.app.state.bookrec.serving.refresher.tick(cards=True)  # type: ignore[attr-defined]
    assert new_id in ids_of(
        other_worker.get(f"{API}/recommendations/me", params=mine, headers=reader)
    )
    # a reader whose taste it does not match does not get it
    stranger = signed_in(client, engine, loaded, "stranger@example.org")
    unrelated = next(
        book
        for book in (client.get(f"{API}/books/{i}").json() for i in range(300, 60, -1))
        if not set(book["author_names"]) & set(popular["author_names"])  # type: ignore[call-overload]
    )
    rated = client.put(
        f"{API}/me/ratings/{unrelated['book_id']}", json={"rating": 5}, headers=stranger
    )
    assert rated.is_success
    theirs = client.get(f"{API}/recommendations/me", params=mine, headers=stranger)
    assert new_id not in ids_of(theirs)
    # an edit reaches the vectors at once: by someone else, with other tags, it matches no more
    edited = {"authors": ["Nobody Known"], "tags": ["lanterns"]}
    assert client.patch(f"{API}/books/{new_id}", json=edited, headers=admin).status_code == 200
    assert new_id not in ids_of(
        client.get(f"{API}/recommendations/me", params=mine, headers=reader)
    )
    assert new_id not in ids_of(client.get(f"{API}/books/{popular_id}/similar", params={"k": 10}))


def test_a_deleted_book_leaves_similar_lists_personal_lists_caches_and_search_at_once(
    client: TestClient,
    other_worker: TestClient,
    admin: dict[str, str],
    engine: Engine,
    loaded: Settings,
) -> None:
    popular, popular_id, reader = a_fan_of_the_most_popular_book(client, engine, loaded)
    new_id = client.post(f"{API}/books", json=like_of(popular), headers=admin).json()["book_id"]
    plain, explained = {"k": 10}, {"k": 10, "explain": "true"}
    listed = client.get(f"{API}/recommendations/me", params=plain, headers=reader)
    again = client.get(f"{API}/recommendations/me", params=plain, headers=reader)
    assert again.headers["X-Cache"] == "hit" and new_id in ids_of(again)
    model_pick = ids_of(listed)[0]  # a book the model itself recommends
    assert new_id in ids_of(client.get(f"{API}/books/{popular_id}/similar"))
    assert new_id in ids_of(client.get(f"{API}/books", params={"q": "quillmoss"}))

    for gone in (new_id, model_pick):
        assert client.delete(f"{API}/books/{gone}", headers=admin).status_code == 204
        for params in (plain, explained):
            answer = client.get(f"{API}/recommendations/me", params=params, headers=reader)
            assert gone not in ids_of(answer) and len(ids_of(answer)) == 10
        for worker in (client, other_worker):
            assert gone not in ids_of(worker.get(f"{API}/books/{popular_id}/similar"))
        assert gone not in ids_of(client.get(f"{API}/books", params={"q": "quillmoss"}))
    # the other worker, after its next catalogue tick
    other_worker.app.state.bookrec.serving.refresher.tick(cards=True)  # type: ignore[attr-defined]
    theirs = other_worker.get(f"{API}/recommendations/me", params=plain, headers=reader)
    assert not {new_id, model_pick} & set(ids_of(theirs))


def test_precomputed_lists_take_new_books_and_drop_deleted_ones(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    popular = most_popular_book(client)
    with Session(engine) as session:
        fan = session.scalar(
            select(Reader.external_id)
            .join(Rating, Rating.reader_id == Reader.reader_id)
            .where(Rating.book_id == popular["book_id"], Rating.rating == 5)
            .order_by(Reader.external_id)
            .limit(1)
        )
    assert fan is not None
    path, plain = f"{API}/recommendations/users/{fan}", {"k": 10}
    before = client.get(path, params=plain, headers=admin)
    assert before.headers["X-Cache"] == "precomputed"
    new_id = client.post(f"{API}/books", json=like_of(popular), headers=admin).json()["book_id"]
    blended = client.get(path, params=plain, headers=admin)
    assert blended.headers["X-Cache"] == "miss"  # the precomputed list, completed
    assert new_id in ids_of(blended)
    assert [b for b in ids_of(blended) if b != new_id] == ids_of(before)[:9]
    assert client.get(path, params=plain, headers=admin).headers["X-Cache"] == "hit"
    model_pick = ids_of(before)[0]
    assert client.delete(f"{API}/books/{model_pick}", headers=admin).status_code == 204
    after = client.get(path, params=plain, headers=admin)
    assert model_pick not in ids_of(after) and new_id in ids_of(after)
    assert len(ids_of(after)) == 10
    assert client.delete(f"{API}/books/{new_id}", headers=admin).status_code == 204
    last = client.get(path, params=plain, headers=admin)
    assert ids_of(last)[:9] == [b for b in ids_of(before) if b != model_pick]
    assert len(ids_of(last)) == 10 and last.headers["X-Cache"] == "precomputed"


def test_with_redis_the_other_workers_hear_of_a_change_at_once(
    loaded: Settings, engine: Engine, redis_server: redis.Redis, redis_prefix: str
) -> None:
    # polls far apart: only the announcement can bring the change within the test's wait
    settings = loaded.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": redis_prefix, "model_poll_seconds": 30.0}
    )
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        admin = signed_in(first, engine, settings, "books-admin@example.org", role="admin")
        reader = signed_in(first, engine, settings, "fan@example.org")
        popular = most_popular_book(first)
        rated = first.put(
            f"{API}/me/ratings/{popular['book_id']}", json={"rating": 5}, headers=reader
        )
        assert rated.is_success
        channel = f"{redis_prefix}models"
        wait_for("both listeners", lambda: redis_server.pubsub_numsub(channel)[0][1] >= 2, 5)
        path, params = f"{API}/recommendations/me", {"k": 10}
        assert ids_of(second.get(path, params=params, headers=reader))
        new_id = first.post(f"{API}/books", json=like_of(popular), headers=admin).json()["book_id"]
        wait_for(
            "the new book on the other worker",
            lambda: new_id in ids_of(second.get(path, params=params, headers=reader)),
            3,
        )
        assert first.delete(f"{API}/books/{new_id}", headers=admin).status_code == 204
        wait_for(
            "the deletion on the other worker",
            lambda: new_id not in ids_of(second.get(path, params=params, headers=reader)),
            3,
        )


def test_on_a_content_model_a_new_book_ranks_among_neighbours_by_its_cosine(
    client: TestClient, admin: dict[str, str], engine: Engine, loaded: Settings
) -> None:
    train(engine, ModelRegistry(loaded.models_dir), "content", settings=loaded, force=True)
    serving = client.app.state.bookrec.serving  # type: ignore[attr-defined]
    serving.refresher.tick(cards=True)
    assert serving.current().algo == "content"
    popular = most_popular_book(client)
    before = client.get(f"{API}/books/{popular['book_id']}/similar", params={"k": 10})
    new_id = client.post(f"{API}/books", json=like_of(popular), headers=admin).json()["book_id"]
    after = client.get(f"{API}/books/{popular['book_id']}/similar", params={"k": 10})
    assert new_id in ids_of(after)
    # the model's neighbours keep their order and scores; the new book displaces the last
    assert [b for b in ids_of(after) if b != new_id] == ids_of(before)[:9]
    kept = {i["book_id"]: i["score"] for i in before.json()["items"]}
    assert all(
        kept[i["book_id"]] == i["score"] for i in after.json()["items"] if i["book_id"] != new_id
    )
