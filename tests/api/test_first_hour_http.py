"""What a new user of the HTTP API meets first: README's backend path, bodies, data as given."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.fixtures.accounts import PASSWORD, signed_in

from bookrec.config import Settings

API = "/api/v1"
ADMIN = "ops@example.org"


def test_readme_backend_path_admin_login_key_lists(
    client: TestClient, loaded: Settings, small_dataset: Path
) -> None:
    """README "For an app's backend": create an admin, log in, make a key, ask with it."""
    created_admin = subprocess.run(
        [sys.executable, "-m", "bookrec.cli.main", *("users", "create-admin"), "--email", ADMIN],
        env={
            "PATH": os.environ["PATH"],
            "DATABASE_URL": loaded.sqlalchemy_url,
            "BOOKREC_VAR_DIR": str(loaded.var_dir),
            "BOOKREC_ADMIN_PASSWORD": PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created_admin.returncode == 0, created_admin.stderr
    login = client.post(
        f"{API}/auth/login", json={"email": "ops@example.org", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = client.post(
        f"{API}/admin/api-keys",
        json={"name": "shop backend", "scopes": ["recommendations:read"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    one = client.get(f"{API}/recommendations/users/3", params={"k": 5}, headers=key)
    assert one.status_code == 200, one.text
    assert len(one.json()["items"]) == 5
    batch = client.post(
        f"{API}/recommendations/batch", json={"user_ids": [1, 2], "k": 3}, headers=key
    )
    assert batch.status_code == 200, batch.text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for step in ("users create-admin", "/api/v1/admin/api-keys", "X-API-Key", "/batch"):
        assert step in readme


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("email=ada%40example.org&password=x", "application/x-www-form-urlencoded"),
        ('{"email": "ada@example.org"', "application/json"),
        ('{"email": "ada@example.org", "password": "x"}', None),
    ],
)
def test_a_body_that_is_not_json_says_what_to_send(
    bare_client: TestClient, body: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = bare_client.post(f"{API}/auth/login", content=body, headers=headers)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "must be a JSON object sent with `Content-Type: application/json`" in detail
    assert "valid dictionary" not in detail


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("grace.hopper@example.org", "gracehopper-99-violet"),
        ("grace.hopper@example.org", "Violet-HOPPER-tandem"),
        ("Ada_Lovelace+books@example.org", "ada-lovelace-harbour"),
    ],
)
def test_the_email_name_rule_ignores_case_and_separators(
    bare_client: TestClient, email: str, password: str
) -> None:
    response = bare_client.post(f"{API}/auth/register", json={"email": email, "password": password})
    assert response.status_code == 422, response.text
    assert "name part of your email" in response.json()["detail"]


def _codes(small_dataset: Path) -> dict[int, str]:
    with (small_dataset / "books.csv").open(newline="") as handle:
        return {int(row["book_id"]): row["language_code"] for row in csv.DictReader(handle)}


def test_language_filters_match_every_spelling_of_the_language(
    client: TestClient, small_dataset: Path
) -> None:
    codes = _codes(small_dataset)
    english = {book for book, code in codes.items() if code in ("eng", "en-US", "en-GB", "en-CA")}
    assert {"eng", "en-US"} <= set(codes.values())
    totals = {
        value: client.get(f"{API}/books", params={"language": value, "size": 1}).json()["total"]
        for value in ("en", "eng", "en-GB", "EN")
    }
    assert set(totals.values()) == {len(english)}, totals
    listing = client.get(f"{API}/recommendations/popular", params={"language": "en", "k": 50})
    assert listing.status_code == 200
    books = [item["book_id"] for item in listing.json()["items"]]
    assert books and set(books) <= english
    assert any(codes[book] != "eng" for book in books)


@pytest.mark.parametrize("route", ["/books", "/recommendations/popular"])
def test_a_value_that_is_no_language_is_refused_by_name(client: TestClient, route: str) -> None:
    response = client.get(f"{API}{route}", params={"language": "english"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "language"
    assert "'english' is not a language code" in body["detail"]


def test_isbns_keep_their_digits(client: TestClient) -> None:
    book = client.get(f"{API}/books/1").json()
    # books.csv has 439023483 and 9.78043902348e+12 for The Hunger Games
    assert book["isbn"] == "0439023483"
    assert book["isbn13"] == "9780439023481"


def test_times_are_iso_8601_utc(client: TestClient, engine: Engine, settings: Settings) -> None:
    headers = signed_in(client, engine, settings, "lin@example.org")
    rated = client.put(f"{API}/me/ratings/3", json={"rating": 4}, headers=headers).json()
    shelved = client.put(f"{API}/me/shelf/5", headers=headers).json()
    me = client.get(f"{API}/me", headers=headers).json()
    for moment in (rated["rated_at"], shelved["added_at"], me["created_at"]):
        assert isinstance(moment, str) and moment.endswith("Z"), moment
