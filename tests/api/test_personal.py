"""Personal recommendations as an outside client sees them, on the default (hybrid) model.

A new reader's cold-start list, rating, un-rating and shelving changing the next list at once
(no retraining), filters, reasons, the cache and the model version header.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from tests.api.conftest import make_settings
from tests.api.test_auth import bearer, login, register

from bookrec.accounts import api_keys
from bookrec.api.access import RECOMMENDATIONS_READ
from bookrec.api.app import create_app
from bookrec.catalog.models import Book
from bookrec.db.engine import make_engine
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.training.service import train

ME = "/api/v1/recommendations/me"


@pytest.fixture(scope="module")
def engine(module_database_url: str) -> Iterator[Engine]:
    db = make_engine(module_database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def client(
    engine: Engine,
    module_database_url: str,
    small_dataset_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """One app on the small data set with the default model, shared by this module's tests."""
    settings = make_settings(module_database_url, tmp_path_factory.mktemp("var")).model_copy(
        update={"rate_limit_register_ip": "1000/minute", "rate_limit_login_ip": "1000/minute"}
    )
    import_directory(engine, small_dataset_master)  # import only reads the files
    train(engine, ModelRegistry(settings.models_dir), settings=settings)  # the default model
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def reader(client: TestClient) -> dict[str, str]:
    """A brand-new account (no ratings yet) and its bearer header."""
    email = f"reader.{uuid.uuid4().hex[:10]}@example.org"
    password = "violet-harbour-tandem-41"
    assert register(client, email, password).status_code == 201
    response = login(client, email, password)
    return bearer(response.json()["access_token"])


def ids(listing: dict[str, Any]) -> list[int]:
    return [item["book_id"] for item in listing["items"]]


def years(engine: Engine, book_ids: list[int]) -> dict[int, int | None]:
    with Session(engine) as session:
        rows = session.execute(
            select(Book.book_id, Book.original_publication_year).where(Book.book_id.in_(book_ids))
        )
        return {int(book_id): year for book_id, year in rows}


def test_new_reader_rates_related_books_and_the_list_follows(
    client: TestClient, engine: Engine
) -> None:
    headers = reader(client)
    cold = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert cold.status_code == 200, cold.text
    assert cold.headers["x-model-version"] == str(cold.json()["model_version"])
    assert len(cold.json()["items"]) == 10
    assert all(item["reasons"] for item in cold.json()["items"])

    # five related books: the first popular book and the four the model finds most like it
    seed = ids(cold.json())[0]
    similar = client.get(f"/api/v1/books/{seed}/similar", params={"k": 4})
    assert similar.status_code == 200, similar.text
    liked = [seed, *ids(similar.json())]
    assert len(set(liked)) == 5
    for book_id in liked:
        response = client.put(f"/api/v1/me/ratings/{book_id}", json={"rating": 5}, headers=headers)
        assert response.status_code in (200, 201), response.text

    after = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert after.status_code == 200
    assert len(after.json()["items"]) == 10
    assert ids(after.json()) != ids(cold.json())
    assert not set(liked) & set(ids(after.json()))
    for item in after.json()["items"]:
        assert item["reasons"], item
        assert all(isinstance(reason, str) and reason for reason in item["reasons"])
        assert {"book_id", "title", "authors", "score"} <= item.keys()
    assert any("because you rated" in r for item in after.json()["items"] for r in item["reasons"])

    assert client.delete(f"/api/v1/me/ratings/{liked[1]}", headers=headers).status_code == 204
    again = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert ids(again.json()) != ids(after.json())
    assert not set(liked) - {liked[1]} & set(ids(again.json()))

    window = client.get(ME, params={"k": 10, "year_min": 1990, "year_max": 2005}, headers=headers)
    assert window.status_code == 200
    found = years(engine, ids(window.json()))
    assert window.json()["items"] and all(
        year is not None and 1990 <= year <= 2005 for year in found.values()
    )


def test_shelved_books_never_come_back(client: TestClient) -> None:
    headers = reader(client)
    first = ids(client.get(ME, params={"k": 5}, headers=headers).json())
    assert client.put(f"/api/v1/me/shelf/{first[0]}", headers=headers).status_code in (200, 201)
    after = ids(client.get(ME, params={"k": 5}, headers=headers).json())
    assert first[0] not in after


def test_each_rating_moves_a_cold_start_list(client: TestClient) -> None:
    headers = reader(client)
    lists = [ids(client.get(ME, params={"k": 10}, headers=headers).json())]
    for book_id in lists[0][:3]:
        client.put(f"/api/v1/me/ratings/{book_id}", json={"rating": 5}, headers=headers)
        lists.append(ids(client.get(ME, params={"k": 10}, headers=headers).json()))
    assert all(before != after for before, after in itertools.pairwise(lists))


def test_cache_hits_until_the_reader_writes(client: TestClient) -> None:
    headers = reader(client)
    first = client.get(ME, params={"k": 7}, headers=headers)
    second = client.get(ME, params={"k": 7}, headers=headers)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json() == first.json()
    other_k = client.get(ME, params={"k": 8}, headers=headers)
    assert other_k.headers["x-cache"] == "miss"  # parameters are part of the key
    book_id = ids(first.json())[0]
    client.put(f"/api/v1/me/ratings/{book_id}", json={"rating": 4}, headers=headers)
    third = client.get(ME, params={"k": 7}, headers=headers)
    assert third.headers["x-cache"] == "miss" and book_id not in ids(third.json())


def test_strategies_and_bad_parameters(client: TestClient) -> None:
    headers = reader(client)
    popular = client.get(ME, params={"strategy": "popular", "k": 5}, headers=headers)
    assert popular.status_code == 200 and popular.json()["strategy"] == "popular"
    client.put(f"/api/v1/me/ratings/{ids(popular.json())[0]}", json={"rating": 2}, headers=headers)
    again = client.get(ME, params={"strategy": "popular", "k": 5}, headers=headers)
    assert ids(popular.json())[0] not in ids(again.json())  # rated books never come back
    trending = client.get(ME, params={"strategy": "trending"}, headers=headers)
    assert trending.status_code == 200 and trending.json()["strategy"] == "trending"
    for params in ({"strategy": "magic"}, {"k": 0}, {"diversity": 2}):
        response = client.get(ME, params=params, headers=headers)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    backwards = client.get(ME, params={"year_min": 2000, "year_max": 1990}, headers=headers)
    assert backwards.status_code == 422 and "year_min" in backwards.text
    assert client.get(ME).status_code == 401


def test_diversity_changes_the_order_but_keeps_the_rules(client: TestClient) -> None:
    headers = reader(client)
    plain = ids(client.get(ME, params={"k": 10}, headers=headers).json())
    client.put(f"/api/v1/me/ratings/{plain[0]}", json={"rating": 5}, headers=headers)
    relevant = ids(client.get(ME, params={"k": 10}, headers=headers).json())
    diverse = ids(client.get(ME, params={"k": 10, "diversity": 0.8}, headers=headers).json())
    assert len(diverse) == 10 and plain[0] not in diverse
    assert diverse != relevant


def test_similar_books(client: TestClient) -> None:
    popular = client.get("/api/v1/recommendations/popular", params={"k": 1}).json()
    book_id = ids(popular)[0]
    similar = client.get(f"/api/v1/books/{book_id}/similar", params={"k": 6})
    assert similar.status_code == 200, similar.text
    assert similar.json()["strategy"] == "similar"
    assert 0 < len(similar.json()["items"]) <= 6 and book_id not in ids(similar.json())
    assert similar.headers["x-model-version"]
    assert all(item["reasons"] is None for item in similar.json()["items"])
    explained = client.get(f"/api/v1/books/{book_id}/similar", params={"k": 6, "explain": True})
    assert ids(explained.json()) == ids(similar.json())
    assert all(item["reasons"] for item in explained.json()["items"])
    missing = client.get("/api/v1/books/999999/similar")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_backend_asks_for_a_data_set_reader_with_an_api_key(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        secret = api_keys.create(session, "shop", [RECOMMENDATIONS_READ], actor_user_id=None).secret
    headers = {"X-API-Key": secret}
    response = client.get("/api/v1/recommendations/users/1", params={"k": 5}, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 5
    assert response.headers["x-model-version"] == str(response.json()["model_version"])
    assert response.headers["x-cache"] == "precomputed"
    again = client.get("/api/v1/recommendations/users/1", params={"k": 5}, headers=headers)
    # a stored list is rebuilt from the model version each time (as cheap as a cache entry)
    assert again.headers["x-cache"] == "precomputed" and again.content == response.content
    explained = {"k": 5, "explain": True}
    scored = client.get("/api/v1/recommendations/users/1", params=explained, headers=headers)
    cached = client.get("/api/v1/recommendations/users/1", params=explained, headers=headers)
    assert (scored.headers["x-cache"], cached.headers["x-cache"]) == ("miss", "hit")
    assert cached.content == scored.content
    assert client.get("/api/v1/recommendations/users/999999", headers=headers).status_code == 404


def test_precomputed_lists_match_live_scoring_until_the_reader_acts(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        secret = api_keys.create(session, "app", [RECOMMENDATIONS_READ], actor_user_id=None).secret
    headers = {"X-API-Key": secret}
    url = "/api/v1/recommendations/users/2"
    stored = client.get(url, params={"k": 10}, headers=headers)
    assert stored.headers["x-cache"] == "precomputed"
    live = client.get(url, params={"k": 10, "explain": True}, headers=headers)  # scored now
    assert live.headers["x-cache"] == "miss"
    assert ids(stored.json()) == ids(live.json())
    scores = [item["score"] for item in stored.json()["items"]]
    assert scores == pytest.approx([item["score"] for item in live.json()["items"]], abs=1e-4)


def test_re_rating_within_the_same_second_is_never_answered_from_the_cache(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ratings 3 = 3★, 6 = 5★ and then 3 = 5★, 6 = 4★ in one second: the same count, the same
    sum of book × stars and of times, so an aggregate of them cannot tell the two apart. The
    activity version can: the second list is scored anew and cites the new ratings."""
    from bookrec.readers import service as readers

    monkeypatch.setattr(readers, "_now", lambda: 1_800_000_000)  # every write in one second
    headers = reader(client)
    with Session(engine) as session:
        titles = {3: session.get_one(Book, 3).title, 6: session.get_one(Book, 6).title}

    def rate(stars: dict[int, int]) -> None:
        for book_id, value in stars.items():
            answer = client.put(
                f"/api/v1/me/ratings/{book_id}", json={"rating": value}, headers=headers
            )
            assert answer.status_code in (200, 201), answer.text

    def reasons(listing: dict[str, Any]) -> set[str]:
        return {reason for item in listing["items"] for reason in item["reasons"] or []}

    rate({3: 3, 6: 5})
    first = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    again = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert again.headers["x-cache"] == "hit" and again.content == first.content

    rate({3: 5, 6: 4})
    second = client.get(ME, params={"k": 10, "explain": True}, headers=headers)
    assert second.status_code == 200, second.text
    assert second.headers["x-cache"] != "hit"
    cited = reasons(second.json())

    def says(phrase: str) -> bool:  # a reason may go on ("... 5★ and readers who liked it ...")
        return any(reason.startswith(phrase) for reason in cited)

    assert not says(f'because you rated "{titles[3]}" 3★')
    assert not says(f'because you rated "{titles[6]}" 5★')
    assert says(f'because you rated "{titles[3]}" 5★') or says(
        f'because you rated "{titles[6]}" 4★'
    )
    assert reasons(first.json()) != cited
