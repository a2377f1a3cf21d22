"""OWASP API risks with no other home in the suite (docs/security.md maps them all)."""

from __future__ import annotations

import ast
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


def test_the_server_has_no_outbound_http_client() -> None:
    """API7: no code path fetches a URL; adding one must come with an SSRF review."""
    root = Path(bookrec.__file__).parent
    found: list[str] = []
    for source in root.rglob("*.py"):
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
