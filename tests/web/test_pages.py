"""The web app's security and plumbing over HTTP: CSRF, session cookies, CSP, who may open
which page, error pages, the offline API docs. (The journeys are in tests/browser.)"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bookrec.accounts import service as accounts
from bookrec.accounts import tokens
from bookrec.accounts.models import User
from bookrec.api.app import create_app
from bookrec.config import Settings
from bookrec.db.base import utcnow
from bookrec.readers.models import Rating
from tests.fixtures.accounts import PASSWORD

HTML = {"accept": "text/html"}
BOOK_ID = 1


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def register(client: TestClient, email: str) -> None:
    token = csrf_of(client.get("/register", headers=HTML).text)
    response = client.post(
        "/register",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/for-you")


def log_in(client: TestClient, email: str) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def make_admin(engine: Engine, settings: Settings, email: str) -> None:
    with Session(engine) as session, session.begin():
        auth = accounts.Authenticator.of(settings)
        accounts.register(session, auth, email, PASSWORD, role="admin")


def signed_in_admin(client: TestClient, engine: Engine, settings: Settings, page: str) -> str:
    """Sign `client` in as a new admin; the CSRF token of admin `page`, for its forms."""
    email = f"admin-{page.strip('/').replace('/', '-')}@example.com"
    make_admin(engine, settings, email)
    log_in(client, email)
    return csrf_of(client.get(page, headers=HTML).text)


def ratings_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Rating)) or 0)


def test_pages_carry_a_csp_without_inline_scripts_and_are_not_cached(client: TestClient) -> None:
    for path in ("/", "/search?q=harry", f"/books/{BOOK_ID}", "/login", "/register"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert script_src.strip() == "script-src 'self'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text and " style=" not in response.text
        # every script and stylesheet comes from this server, versioned
        for url in re.findall(r'(?:src|href)="([^"]+\.(?:js|css)[^"]*)"', response.text):
            assert url.startswith("/static/") and "?v=" in url, url
            assert client.get(url).status_code == 200


def test_session_cookie_is_httponly_lax_and_secure_over_https(
    bare_client: TestClient, settings: Settings
) -> None:
    register(bare_client, "cookie-reader@example.com")
    cookie = next(c for c in bare_client.cookies.jar if c.name == "bookrec_session")
    assert not cookie.secure
    with TestClient(bare_client.app, base_url="https://testserver") as secure_client:
        token = csrf_of(secure_client.get("/register", headers=HTML).text)
        response = secure_client.post(
            "/register",
            data={"email": "tls-reader@example.com", "password": PASSWORD, "csrf_token": token},
            headers=HTML,
            follow_redirects=False,
        )
    assert response.status_code == 303
    set_cookie = next(
        v for v in response.headers.get_list("set-cookie") if v.startswith("bookrec_session=")
    )
    flags = {part.strip().lower() for part in set_cookie.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags


def test_posts_without_this_sessions_csrf_token_are_refused(
    client: TestClient, engine: Engine
) -> None:
    # no token at all: no account is made
    response = client.post(
        "/register", data={"email": "forged@example.com", "password": PASSWORD}, headers=HTML
    )
    assert response.status_code == 403
    assert "Form expired" in response.text
    with Session(engine) as session:
        assert session.scalar(select(User).where(User.email == "forged@example.com")) is None

    anonymous_token = csrf_of(client.get("/login", headers=HTML).text)
    register(client, "csrf-reader@example.com")
    before = ratings_count(engine)
    for token, header in (("0" * 64, False), (anonymous_token, False), (anonymous_token, True)):
        data = {"rating": "5"} if header else {"rating": "5", "csrf_token": token}
        headers = {**HTML, "X-CSRF-Token": token} if header else HTML
        response = client.post(f"/books/{BOOK_ID}/rating", data=data, headers=headers)
        assert response.status_code == 403
    assert ratings_count(engine) == before

    # this session's token passes, in the form or (as fetch sends it) in the header
    token = csrf_of(client.get(f"/books/{BOOK_ID}", headers=HTML).text)
    response = client.post(
        f"/books/{BOOK_ID}/rating",
        data={"rating": "4"},
        headers={**HTML, "X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert ratings_count(engine) == before + 1


def test_admin_pages_send_strangers_to_log_in_and_refuse_readers(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    response = client.get("/admin/models", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/models"

    register(client, "plain-reader@example.com")
    for path in ("/admin", "/admin/models", "/admin/jobs", "/admin/experiments", "/admin/api-keys"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 403, path
        assert "Forbidden" in response.text
    token = csrf_of(client.get("/", headers=HTML).text)
    response = client.post("/admin/models/rollback", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 403

    make_admin(engine, loaded, "site-admin@example.com")
    client.cookies.clear()
    log_in(client, "site-admin@example.com")
    response = client.get("/admin/models", headers=HTML)
    assert response.status_code == 200
    assert 'id="active-version">version 1<' in response.text
    assert "<svg" in response.text and 'class="metrics-chart"' in response.text
    for path in ("/admin", "/admin/jobs", "/admin/experiments", "/admin/api-keys"):
        assert client.get(path, headers=HTML).status_code == 200, path


def test_logging_out_ends_the_login_and_an_expired_cookie_is_renewed(
    bare_client: TestClient, settings: Settings
) -> None:
    register(bare_client, "session-reader@example.com")
    cookie = bare_client.cookies["bookrec_session"]
    config = tokens.TokenConfig.of(settings)
    claims = tokens.decode_access_token(config, cookie)
    expired = tokens.issue_access_token(
        config, claims.user_id, claims.role, claims.session_id, utcnow() - timedelta(hours=2)
    )
    bare_client.cookies.set("bookrec_session", expired, domain="testserver.local")
    response = bare_client.get("/for-you", headers=HTML, follow_redirects=False)
    assert response.status_code == 200
    renewed = bare_client.cookies["bookrec_session"]
    assert renewed != expired
    assert tokens.decode_access_token(config, renewed).session_id == claims.session_id

    token = csrf_of(response.text)
    response = bare_client.post("/logout", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 200  # the home page, after the redirect
    assert "bookrec_session" not in bare_client.cookies
    # a copy kept from before the log-out no longer works
    bare_client.cookies.set("bookrec_session", renewed, domain="testserver.local")
    response = bare_client.get("/for-you", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_form_errors_are_shown_next_to_their_field(bare_client: TestClient) -> None:
    token = csrf_of(bare_client.get("/register", headers=HTML).text)
    response = bare_client.post(
        "/register",
        data={"email": "weak@example.com", "password": "short", "csrf_token": token},
        headers=HTML,
    )
    assert response.status_code == 400
    assert 'id="password-error"' in response.text
    assert 'aria-describedby="password-hint password-error"' in response.text

    token = csrf_of(bare_client.get("/login", headers=HTML).text)
    response = bare_client.post(
        "/login",
        data={"email": "nobody@example.com", "password": "wrong password", "csrf_token": token},
        headers=HTML,
    )
    assert response.status_code == 401
    assert accounts.LOGIN_FAILED in response.text


def test_unknown_pages_get_a_404_page_and_the_api_keeps_problem_json(
    bare_client: TestClient,
) -> None:
    response = bare_client.get("/no/such/page", headers=HTML)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    response = bare_client.get("/books/99999999", headers=HTML)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    response = bare_client.get("/api/v1/books/99999999", headers=HTML)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_page_that_fails_gets_an_error_page_with_the_request_id(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/broken-page")
    def broken() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as raw:
        page = raw.get("/broken-page", headers={**HTML, "X-Request-ID": "trace-7"})
        api = raw.get("/broken-page", headers={"X-Request-ID": "trace-8"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in page.text and "trace-7" in page.text
    assert "boom" not in page.text  # the exception stays in the log
    assert page.headers["x-request-id"] == "trace-7"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert api.headers["content-type"] == "application/problem+json"  # not a browser


def test_the_api_docs_need_no_internet(bare_client: TestClient) -> None:
    response = bare_client.get("/docs")
    assert response.status_code == 200
    assert "http://" not in response.text and "https://" not in response.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert any("swagger-ui-bundle.js" in url for url in assets)
    for url in assets:
        assert url.startswith("/static/"), url
        assert bare_client.get(url).status_code == 200, url
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert bare_client.get("/openapi.json").status_code == 200


def test_without_data_or_a_model_the_pages_say_what_to_do(bare_client: TestClient) -> None:
    response = bare_client.get("/", headers=HTML)
    assert response.status_code == 200
    assert 'class="empty"' in response.text
    register(bare_client, "early-reader@example.com")
    response = bare_client.get("/for-you", headers=HTML)
    assert response.status_code == 200
    assert "<article" not in response.text and 'class="empty"' in response.text
    response = bare_client.get("/search?q=anything", headers=HTML)
    assert response.status_code == 200
    assert "No book matches" in response.text
    assert 'id="tag"' not in response.text  # no book has a tag: no tag filter


def test_a_dead_session_cookie_does_not_spoil_the_next_log_in(bare_client: TestClient) -> None:
    client = bare_client
    register(client, "returning-reader@example.com")
    token = csrf_of(client.get("/", headers=HTML).text)
    stale = client.cookies["bookrec_session"]
    client.post("/logout", data={"csrf_token": token}, headers=HTML)
    client.cookies.set("bookrec_session", stale, domain="testserver.local")  # another tab's copy
    log_in(client, "returning-reader@example.com")
    assert client.get("/for-you", headers=HTML, follow_redirects=False).status_code == 200


def test_account_exports_imports_a_goodreads_library_and_is_deleted_after_confirmation(
    client: TestClient, engine: Engine
) -> None:
    from tests.api.test_goodreads_import import export, row

    register(client, "leaving-reader@example.com")
    page = client.get("/account", headers=HTML)
    token = csrf_of(page.text)

    book = client.get(f"/api/v1/books/{BOOK_ID}").json()
    library = export([row(book["goodreads_book_id"], book["title"], "", 5, "read")])
    files = {"file": ("goodreads_library_export.csv", library, "text/csv")}
    response = client.post("/account/import", data={"csrf_token": token}, files=files)
    assert response.status_code == 200
    assert "1 matched (1 ratings" in response.text

    exported = client.get("/account/export")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json()["account"]["email"] == "leaving-reader@example.com"

    # no tick, then a wrong password: refused, with the error next to its field
    response = client.post(
        "/account/delete", data={"csrf_token": token, "password": PASSWORD}, headers=HTML
    )
    assert response.status_code == 400 and 'id="confirm-error"' in response.text
    response = client.post(
        "/account/delete",
        data={"csrf_token": token, "password": "not my password", "confirm": "yes"},
        headers=HTML,
    )
    assert response.status_code == 400 and 'id="password-error"' in response.text

    response = client.post(
        "/account/delete",
        data={"csrf_token": token, "password": PASSWORD, "confirm": "yes"},
        headers=HTML,
    )
    assert response.status_code == 200 and "Your account is deleted" in response.text
    assert "bookrec_session" not in client.cookies
    with Session(engine) as session:
        found = session.scalar(select(User).where(User.email == "leaving-reader@example.com"))
        assert found is None


def test_an_admin_runs_an_experiment_and_follows_a_job_from_the_pages(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    token = signed_in_admin(client, engine, loaded, "/admin/experiments")
    response = client.post(
        "/admin/experiments",
        data={"csrf_token": token, "name": "lists", "control": "personal", "treatment": "v1"},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    experiment = response.headers["location"].split("?")[0]
    for action in ("start", "stop"):
        response = client.post(f"{experiment}/{action}", data={"csrf_token": token}, headers=HTML)
        assert response.status_code == 200
    assert "stopped" in response.text and "95% interval" in response.text
    again = client.post(f"{experiment}/start", data={"csrf_token": token}, headers=HTML)
    assert again.status_code == 409 and "only a draft can start" in again.text
    # shipping is confirmed on a page of its own, which posts the chosen variant
    page = client.get(experiment, headers=HTML).text
    assert f'<form method="get" action="{experiment}/ship"' in page
    confirm = client.get(f"{experiment}/ship?variant=treatment", headers=HTML)
    assert confirm.status_code == 200
    assert "Ship variant treatment of lists?" in confirm.text
    assert "model version 1 answers every personal list" in confirm.text
    assert '<input type="hidden" name="variant" value="treatment">' in confirm.text
    assert f'action="{experiment}/ship"' in confirm.text
    unknown = client.get(f"{experiment}/ship?variant=nobody", headers=HTML)
    assert unknown.status_code == 422 and "has no variant" in unknown.text

    response = client.post(
        "/admin/jobs",
        data={"csrf_token": token, "algo": "no-such-algo"},
        headers=HTML,
    )
    assert response.status_code == 400 and 'id="algo-error"' in response.text
    response = client.post(
        "/admin/jobs",
        data={"csrf_token": token, "algo": "popularity"},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303
    job_page = response.headers["location"].split("?")[0]
    progress = client.get(f"{job_page}/progress")
    assert progress.status_code == 200
    assert progress.json()["status"] in ("queued", "running", "succeeded")
    assert 0 <= progress.json()["progress"] <= 100


def test_revoking_an_api_key_is_confirmed_first(
    client: TestClient, engine: Engine, loaded: Settings
) -> None:
    token = signed_in_admin(client, engine, loaded, "/admin/api-keys")
    created = client.post(
        "/admin/api-keys",
        data={"csrf_token": token, "name": "shop", "scopes": "recommendations:read"},
        headers=HTML,
    )
    assert created.status_code == 201, created.text
    link = re.search(r'href="(/admin/api-keys/(\d+)/revoke)"', created.text)
    assert link, "the key's row links to its revocation"
    confirm = client.get(link.group(1), headers=HTML)
    assert "Revoke the API key shop?" in confirm.text and "cannot be restored" in confirm.text
    revoked = client.post(link.group(1), data={"csrf_token": token}, headers=HTML)
    assert revoked.status_code == 200 and "revoked" in revoked.text
    # a revoked key has nothing left to confirm
    again = client.get(link.group(1), headers=HTML, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/admin/api-keys"


def test_search_filters_page_and_point_at_a_bad_year(client: TestClient) -> None:
    everything = client.get("/search", headers=HTML).text
    assert "Page 1 of 15" in everything and 'href="/search?page=2"' in everything
    assert '<select id="tag" name="tag">' in everything  # the small data set has tags
    second = client.get("/search?page=2", headers=HTML).text
    assert "Page 2 of 15" in second and 'rel="prev"' in second

    response = client.get("/search?q=harry&year_min=soon", headers=HTML)
    assert response.status_code == 200
    assert 'id="year_min-error"' in response.text and 'aria-invalid="true"' in response.text
    recent = client.get("/search?year_min=2010&year_max=2012", headers=HTML).text
    years = [int(y) for y in re.findall(r'<p class="muted">(\d{4})', recent)]
    assert years and all(2010 <= year <= 2012 for year in years)


def test_every_admin_page_needs_an_admin(bare_client: TestClient) -> None:
    """The route table, walked: a page added under /admin later is guarded too."""
    from fastapi.routing import APIRoute, iter_route_contexts

    app: Any = bare_client.app
    pages = sorted(
        (method, re.sub(r"\{[^}]+\}", "1", str(context.path)))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and str(context.path).startswith("/admin")
        for method in context.methods or ()
    )
    assert len(pages) >= 15
    for method, path in pages:
        response = bare_client.request(method, path, headers=HTML, follow_redirects=False)
        assert response.status_code in ((303,) if method == "GET" else (303, 403)), path
    register(bare_client, "nosy-reader@example.com")
    token = csrf_of(bare_client.get("/", headers=HTML).text)
    for method, path in pages:
        data = {"csrf_token": token} if method == "POST" else None
        response = bare_client.request(method, path, data=data, headers=HTML)
        assert response.status_code == 403, (method, path)
        assert "This page is for admins" in response.text, (method, path)


def test_a_browser_that_logged_in_before_passes_an_exhausted_account_limit(
    settings: Settings,
) -> None:
    from bookrec.api.app import create_app

    app = create_app(settings.model_copy(update={"rate_limit_login_account": "2/hour"}))
    with TestClient(app) as owner, TestClient(app) as stranger:
        register(owner, "owned@example.com")
        owner.cookies.clear()
        log_in(owner, "owned@example.com")
        device = next(c for c in owner.cookies.jar if c.name == "bookrec_device")
        assert device.path == "/login"
        owner.cookies.delete("bookrec_session")
        for expected in (401, 401, 429):
            token = csrf_of(stranger.get("/login", headers=HTML).text)
            response = stranger.post(
                "/login",
                data={"email": "owned@example.com", "password": "guess", "csrf_token": token},
                headers=HTML,
            )
            assert response.status_code == expected
        assert "Retry-After" in response.headers
        log_in(owner, "owned@example.com")  # the owner's browser is not held back


def test_log_in_goes_back_only_to_a_page_of_this_site(
    bare_client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_admin(engine, settings, "wanderer@example.com")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/shelf"):
        token = csrf_of(bare_client.get("/login", params={"next": target}, headers=HTML).text)
        response = bare_client.post(
            "/login",
            data={
                "email": "wanderer@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
            headers=HTML,
            follow_redirects=False,
        )
        assert response.status_code == 303
        expected = "/shelf" if target == "/shelf" else "/?notice=logged-in"
        assert response.headers["location"] == expected, target
        bare_client.cookies.clear()
