"""OWASP API risks with no other home in the suite (docs/security.md maps them all)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from tests.api.test_auth import PASSWORD, bearer, login

import bookrec

#: Modules that would let the server fetch a URL (API7: SSRF needs an outbound client).
OUTBOUND_HTTP = {"httpx", "requests", "urllib.request", "urllib3", "aiohttp", "http.client"}


def test_register_ignores_a_role_or_ids_in_the_body(bare_client: TestClient) -> None:
    """API3: mass assignment; a client cannot make itself an admin or pick its ids."""
    body = {
        "email": "mallory@example.org",
        "password": PASSWORD,
        "role": "admin",
        "user_id": 1000,
        "reader_id": 1,
    }
    created = bare_client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["role"] == "reader" and account["user_id"] != 1000
    tokens = login(bare_client, email=body["email"]).json()
    me = bare_client.get("/api/v1/me", headers=bearer(tokens["access_token"])).json()
    assert me["role"] == "reader"


#: The one module that fetches URLs: `bookrec data download`, run by an operator from the
#: command line with a URL they choose (reviewed: never reachable from an HTTP request).
OUTBOUND_ALLOWED = {"datasets/download.py"}


def test_the_server_has_no_outbound_http_client() -> None:
    """API7: no code path the server runs fetches a URL; adding one must come with an SSRF
    review. The command line's downloader is the one exception, and the app never loads it."""
    root = Path(bookrec.__file__).parent
    found: list[str] = []
    for source in root.rglob("*.py"):
        if str(source.relative_to(root)) in OUTBOUND_ALLOWED:
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{source.relative_to(root)}: {name}"
                for name in names
                if any(name == banned or name.startswith(banned + ".") for banned in OUTBOUND_HTTP)
            ]
    assert not found, found
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bookrec.api.app, bookrec.api.server\n"
            "print(sorted(m for m in sys.modules if m == 'bookrec.datasets.download'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_a_nul_character_is_refused_in_the_query_and_in_json(bare_client: TestClient) -> None:
    """API8: a NUL (which PostgreSQL cannot store in text) is a 422 on every database, not a
    500 from deep inside a query; a JSON text that merely spells "\\u0000" is accepted."""
    answers = [
        bare_client.get("/api/v1/books?tag=%00"),
        bare_client.get("/api/v1/books?q=dune%00"),
        bare_client.post(
            "/api/v1/auth/register", json={"email": "a\x00@example.org", "password": PASSWORD}
        ),
        bare_client.post(
            "/api/v1/auth/login", json={"email": "a@example.org", "password": PASSWORD + "\x00"}
        ),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "NUL" in answer.json()["detail"]
    form = bare_client.post("/login", data={"email": "a\x00@example.org", "password": PASSWORD})
    assert form.status_code == 422, form.text
    assert form.headers["content-type"].startswith("text/html") and "NUL characters" in form.text
    spelled = bare_client.post(
        "/api/v1/auth/register",
        json={"email": "nul@example.org", "password": PASSWORD + "\\u0000"},
    )
    assert spelled.status_code == 201, spelled.text
