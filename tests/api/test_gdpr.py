"""GDPR over HTTP: export everything, erase everything, on SQLite and PostgreSQL.

The app holds the small data set imported (on PostgreSQL through the bulk path, whose ratings
and shelf keys are re-attached `NOT VALID`) so erasure is proven to cascade there too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.api.test_auth import EMAIL, PASSWORD, assert_unauthorized, bearer, login, register

from bookrec.accounts import privacy
from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import RefreshToken, User
from bookrec.catalog.models import Book
from bookrec.readers.models import Event, Rating, Reader, ShelfItem

NORMALISED = EMAIL.lower()
RATED = {1: 5, 2: 3, 7: 4}
SHELVED = 11


def seed_activity(engine: Engine, reader_id: int) -> None:
    """Ratings, a shelf entry and an event for one reader, written as the data layer would."""
    with Session(engine) as session, session.begin():
        session.add_all(
            Rating(reader_id=reader_id, book_id=book, rating=stars, rated_at=1_700_000_000)
            for book, stars in RATED.items()
        )
        session.add(ShelfItem(reader_id=reader_id, book_id=SHELVED, added_at=1_700_000_100))
        session.add(
            Event(
                reader_id=reader_id,
                book_id=1,
                kind="view",
                occurred_at=1_700_000_200,
                context={"page": "book"},
            )
        )


def sign_up(client: TestClient, engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
    """A reader with activity, a failed login and a live login: (account, tokens)."""
    created = register(client)
    assert created.status_code == 201, created.text
    account = created.json()
    seed_activity(engine, account["reader_id"])
    assert_unauthorized(login(client, password="not-the-password-at-all"))
    tokens = login(client).json()
    return account, tokens


def erase(client: TestClient, access_token: str, password: str = PASSWORD) -> Any:
    """DELETE /me with the password asked again, as a reader erasing their account does."""
    return client.request(
        "DELETE", "/api/v1/me", json={"password": password}, headers=bearer(access_token)
    )


def count(engine: Engine, column: Any, value: object) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).where(column == value)) or 0)


def test_export_holds_everything_about_the_reader(client: TestClient, engine: Engine) -> None:
    account, tokens = sign_up(client, engine)
    assert_unauthorized(client.get("/api/v1/me/export"))

    response = client.get("/api/v1/me/export", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "no-store" in response.headers["cache-control"]
    export = response.json()

    assert export["account"]["email"] == NORMALISED
    assert export["account"]["role"] == "reader"
    assert export["account"]["created_at"] == account["created_at"]
    with Session(engine) as session:
        titles = {
            b.book_id: b.title for b in session.scalars(select(Book).where(Book.book_id <= 20))
        }
    assert [(r["book_id"], r["rating"], r["title"]) for r in export["ratings"]] == [
        (book, stars, titles[book]) for book, stars in RATED.items()
    ]
    assert [(s["book_id"], s["title"]) for s in export["shelf"]] == [(SHELVED, titles[SHELVED])]
    assert [(e["kind"], e["book_id"], e["context"]) for e in export["events"]] == [
        ("view", 1, {"page": "book"})
    ]
    assert len(export["sessions"]) == 1 and export["sessions"][0]["revoked_at"] is None
    actions = [a["action"] for a in export["audit_events"]]
    assert actions == ["user.register", "auth.login_failed", "auth.login"]
    # no secret leaves: neither the refresh token nor any stored hash
    text = response.text
    assert tokens["refresh_token"] not in text
    assert "token_hash" not in text and "password_hash" not in text
    with Session(engine) as session:
        stored_hash = session.scalars(select(RefreshToken.token_hash)).one()
        password_hash = session.scalars(select(User.password_hash)).one()
    assert stored_hash not in text and password_hash not in text


def test_erase_removes_the_account_and_everything_it_did(
    client: TestClient, engine: Engine
) -> None:
    account, tokens = sign_up(client, engine)
    user_id, reader_id = account["user_id"], account["reader_id"]
    others_ratings = count(engine, Rating.reader_id != reader_id, True)
    assert others_ratings > 0

    erased = erase(client, tokens["access_token"])
    assert erased.status_code == 204, erased.text

    with Session(engine) as session:
        assert session.get(User, user_id) is None
        assert session.get(Reader, reader_id) is None
    for column, value in (
        (Rating.reader_id, reader_id),
        (ShelfItem.reader_id, reader_id),
        (Event.reader_id, reader_id),
        (RefreshToken.user_id, user_id),
    ):
        assert count(engine, column, value) == 0, column
    assert count(engine, Rating.reader_id != reader_id, True) == others_ratings

    assert_unauthorized(login(client))
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(tokens["access_token"])))
    assert_unauthorized(client.get("/api/v1/me/export", headers=bearer(tokens["access_token"])))
    assert_unauthorized(
        client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    )

    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.event_id)).all()
    erase_event = next(e for e in events if e.action == privacy.ERASED_ACTION)
    assert erase_event.actor_user_id is None and erase_event.ip is None
    assert erase_event.details == {"ratings": 3, "shelf": 1, "events": 1, "refresh_tokens": 1}
    # the security record stays, anonymised: no event up to the erasure names the email
    # (later failed logins with the address are new events about whoever typed it)
    kept = [e for e in events if e.event_id <= erase_event.event_id]
    assert {"user.register", "auth.login_failed", "auth.login"} <= {e.action for e in kept}
    for event in kept:
        assert event.actor_user_id != user_id
        assert NORMALISED not in json.dumps([event.target, event.details]), event.action

    # the address is free again, for a brand-new account with nothing of the old one
    assert register(client).status_code == 201
    fresh = login(client).json()
    export = client.get("/api/v1/me/export", headers=bearer(fresh["access_token"])).json()
    assert export["ratings"] == [] and export["shelf"] == [] and export["events"] == []


def test_erasing_a_linked_imported_reader_drops_the_imported_history(
    client: TestClient, engine: Engine
) -> None:
    """Ratings bulk-loaded by the import (PostgreSQL: keys NOT VALID) cascade as well."""
    account = register(client).json()
    with Session(engine) as session, session.begin():
        imported = session.scalars(select(Reader).where(Reader.external_id == 1)).one()
        user = session.get_one(User, account["user_id"])
        own_reader = user.reader_id
        user.reader_id = imported.reader_id
        session.flush()
        session.delete(session.get_one(Reader, own_reader))
        imported_id = imported.reader_id
    imported_ratings = count(engine, Rating.reader_id, imported_id)
    assert imported_ratings > 0
    tokens = login(client).json()
    export = client.get("/api/v1/me/export", headers=bearer(tokens["access_token"])).json()
    assert export["account"]["reader_external_id"] == 1
    assert len(export["ratings"]) == imported_ratings

    assert erase(client, tokens["access_token"]).status_code == 204
    assert count(engine, Rating.reader_id, imported_id) == 0
    assert count(engine, ShelfItem.reader_id, imported_id) == 0
    assert count(engine, Reader.external_id, 1) == 0


def test_erase_is_all_or_nothing(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, tokens = sign_up(client, engine)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(privacy.audit, "record", broken)
    with pytest.raises(RuntimeError):
        erase(client, tokens["access_token"])
    monkeypatch.undo()
    with Session(engine) as session:
        assert session.get(User, account["user_id"]) is not None
    assert count(engine, Rating.reader_id, account["reader_id"]) == len(RATED)
    assert count(engine, RefreshToken.user_id, account["user_id"]) == 1
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).is_success
    assert login(client, password=PASSWORD).status_code == 200
