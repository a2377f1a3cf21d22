"""A reader imports a Goodreads library export over HTTP."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.fixtures.accounts import signed_in

from bookrec.config import Settings
from bookrec.importing.goodreads import MAX_BYTES

API = "/api/v1"
# the columns of a real export (goodreads.com, Export Library), in its order
HEADER = [
    "Book Id", "Title", "Author", "Author l-f", "Additional Authors", "ISBN", "ISBN13",
    "My Rating", "Average Rating", "Publisher", "Binding", "Number of Pages", "Year Published",
    "Original Publication Year", "Date Read", "Date Added", "Bookshelves",
    "Bookshelves with positions", "Exclusive Shelf", "My Review", "Spoiler", "Private Notes",
    "Read Count", "Owned Copies",
]  # fmt: skip


def export(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in HEADER})
    return out.getvalue().encode()


def row(
    book_id: int | str, title: str, author: str, stars: int, shelf: str, **more: str
) -> dict[str, Any]:
    return {
        "Book Id": book_id, "Title": title, "Author": author, "My Rating": stars,
        "Exclusive Shelf": shelf, "Read Count": 1, **more,
    }  # fmt: skip


@pytest.fixture
def reader(client: TestClient, engine: Engine, loaded: Settings) -> dict[str, str]:
    return signed_in(client, engine, loaded, "goodreads-reader@example.org")


def upload(client: TestClient, headers: dict[str, str], content: bytes) -> Any:
    files = {"file": ("goodreads_library_export.csv", content, "text/csv")}
    return client.post(f"{API}/me/import/goodreads", files=files, headers=headers)


def test_five_read_and_two_to_read_become_five_ratings_and_two_shelved(
    client: TestClient, reader: dict[str, str]
) -> None:
    books = {i: client.get(f"{API}/books/{i}").json() for i in range(1, 8)}
    content = export(
        [
            row(books[1]["goodreads_book_id"], books[1]["title"], "Suzanne Collins", 5, "read"),
            # matched by ISBN (Goodreads writes ="..."); the id is unknown here
            row(990000001, "x", "y", 4, "read", ISBN=f'="{books[2]["isbn"]}"', ISBN13='=""'),
            row(990000002, "x", "y", 3, "read", ISBN='=""', ISBN13=f'="{books[3]["isbn13"]}"'),
            # matched by title and author: case, accents, punctuation and series differ
            row(
                990000003,
                books[4]["title"].upper().split(" (")[0] + " (Some Series, #9)",
                books[4]["author_names"][0].upper(),
                2,
                "read",
            ),
            row(books[5]["goodreads_book_id"], books[5]["title"], "", 1, "currently-reading"),
            row(books[6]["goodreads_book_id"], books[6]["title"], "", 0, "to-read"),
            row(books[7]["goodreads_book_id"], books[7]["title"], "", 0, "to-read"),
            row(990000004, "Read But Not Rated", "Nobody", 0, "read"),
            row(990000005, "A Book Nobody Has Heard Of", "Nobody", 4, "read"),
        ]
    )
    response = upload(client, reader, content)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 9,
        "matched": 7,
        "ratings": 5,
        "shelved": 2,
        "skipped": 1,
        "unmatched": 1,
        "unmatched_titles": ["A Book Nobody Has Heard Of"],
    }
    ratings = client.get(f"{API}/me/ratings", params={"size": 100}, headers=reader).json()
    assert {(r["book_id"], r["rating"]) for r in ratings["items"]} == {
        (1, 5), (2, 4), (3, 3), (4, 2), (5, 1),
    }  # fmt: skip
    shelf = client.get(f"{API}/me/shelf", headers=reader).json()
    assert {item["book_id"] for item in shelf["items"]} == {6, 7}


def test_a_bad_row_keeps_nothing(client: TestClient, reader: dict[str, str]) -> None:
    good = client.get(f"{API}/books/1").json()
    content = export(
        [
            row(good["goodreads_book_id"], good["title"], "", 5, "read"),
            row(990000001, "x", "y", 7, "read"),
        ]
    )
    response = upload(client, reader, content)
    assert response.status_code == 422
    assert "line 3" in response.json()["detail"] and "My Rating" in response.json()["detail"]
    assert client.get(f"{API}/me/ratings", headers=reader).json()["total"] == 0


def test_other_files_are_refused_with_what_an_export_looks_like(
    client: TestClient, reader: dict[str, str]
) -> None:
    for content in (b"user_id,book_id,rating\n1,2,5\n", b"\xff\xfe\x00garbage", b""):
        response = upload(client, reader, content)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert "Goodreads" in problem["detail"] and "Export Library" in problem["detail"]
    huge = export([]) + b"x" * MAX_BYTES
    assert upload(client, reader, huge).status_code == 413
    assert client.post(f"{API}/me/import/goodreads", headers=reader).status_code == 422
    assert upload(client, {}, export([])).status_code == 401
