"""API hardening: rate limits (memory, Redis, Redis down), security headers, CORS, body cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import structlog
from fastapi.testclient import TestClient
from tests.fixtures.clock import FakeClock
from tests.fixtures.redis import REDIS_URL

from bookrec.api.app import create_app
from bookrec.api.ratelimit import Limits, RateLimiter
from bookrec.config import Settings
from bookrec.db.redis import RETRY_SECONDS
from bookrec.errors import TooManyRequests
from bookrec.schema.migrate import upgrade

PASSWORD = "correct-horse-battery-staple-42"
MIB = 1024 * 1024
CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One migrated SQLite database for the module: these tests need accounts, not data."""
    url = f"sqlite:///{tmp_path_factory.mktemp('hardening') / 'bookrec.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def make(sqlite_url: str, tmp_path: Path) -> Any:
    """Build settings for the test database, with any `BOOKREC_*`/`REDIS_URL` overrides."""

    def build(**env: Any) -> Settings:
        return Settings(
            DATABASE_URL=sqlite_url,
            BOOKREC_VAR_DIR=tmp_path / "var",
            BOOKREC_ENV="test",
            BOOKREC_LOG_FORMAT="console",
            BOOKREC_ARGON2_TIME_COST=1,
            BOOKREC_ARGON2_MEMORY_KIB=64,
            BOOKREC_ARGON2_PARALLELISM=1,
            **env,
        )

    return build


@pytest.fixture
def client(make: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make())) as test_client:
        yield test_client


def login(client: TestClient, email: str, password: str = "wrong-password-every-time") -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/rate-limited")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    return retry_after


# -- rate limits ----------------------------------------------------------------------------


def test_forty_bad_logins_meet_a_429_with_retry_after(client: TestClient) -> None:
    statuses = [login(client, f"guess{i}@example.org").status_code for i in range(40)]
    assert statuses[:10] == [401] * 10  # BOOKREC_RATE_LIMIT_LOGIN_IP defaults to 10/minute
    assert set(statuses[10:]) == {429}
    assert_rate_limited(login(client, "guess0@example.org"))


def test_login_is_limited_per_account_and_address(make: Any) -> None:
    app = create_app(make())
    with TestClient(app) as first:
        for i in range(6):  # one attempt from each of six addresses: none is held back
            other = TestClient(app, client=(f"203.0.113.{i}", 40000))
            assert login(other, "ada@example.org").status_code == 401
        statuses = [login(first, "ada@example.org").status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]  # BOOKREC_RATE_LIMIT_LOGIN_EMAIL: 5/minute
        # the pair ignores case and spacing; other accounts from here are untouched
        assert_rate_limited(login(first, " ADA@example.ORG "))
        assert login(first, "grace@example.org").status_code == 401


def test_register_is_limited_per_address(make: Any) -> None:
    with TestClient(create_app(make(BOOKREC_RATE_LIMIT_REGISTER_IP="3/minute"))) as client:
        statuses = [
            client.post(
                "/api/v1/auth/register", json={"email": f"r{i}@example.org", "password": PASSWORD}
            ).status_code
            for i in range(4)
        ]
        assert statuses == [201, 201, 201, 429]


def test_general_limit_per_client_spares_health(make: Any) -> None:
    settings = make(BOOKREC_RATE_LIMIT_GENERAL="4/minute", BOOKREC_RATE_LIMIT_REGISTER_IP="9/hour")
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/api/v1/auth/register", json={"email": "lin@example.org", "password": PASSWORD}
        )
        assert created.status_code == 201
        tokens = login(client, "lin@example.org", PASSWORD).json()
        statuses = [client.get("/api/v1/me").status_code for _ in range(3)]
        assert statuses == [401, 401, 429]  # register + login + 2 = 4 from this address
        assert_rate_limited(client.get("/api/v1/books"))
        # a logged-in user counts on their own, not on the address they share
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert [client.get("/api/v1/me", headers=auth).status_code for _ in range(5)] == [
            200
        ] * 4 + [429]
        # probes are never limited
        assert {client.get("/health/live").status_code for _ in range(10)} == {200}


def test_made_up_api_keys_do_not_buy_fresh_allowances(make: Any) -> None:
    settings = make(BOOKREC_RATE_LIMIT_GENERAL="3/minute")
    with TestClient(create_app(settings)) as client:
        statuses = [
            client.get("/api/v1/tags", headers={"X-API-Key": f"brk_made-up-{n}"}).status_code
            for n in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


# -- security headers and CORS -------------------------------------------------------------


def test_hsts_only_over_tls_and_no_store_on_auth(make: Any) -> None:
    app = create_app(make())
    with TestClient(app) as plain, TestClient(app, base_url="https://testserver") as tls:
        over_http = plain.get("/health/live")
        assert "strict-transport-security" not in over_http.headers
        assert over_http.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in over_http.headers["content-security-policy"]
        assert "cache-control" not in over_http.headers
        over_tls = tls.get("/health/live")
        assert (
            over_tls.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        )
        assert login(tls, "x@example.org").headers["cache-control"] == "no-store"
        assert plain.get("/api/v1/me").headers["cache-control"] == "no-store"


def test_hsts_behind_a_tls_proxy(make: Any) -> None:
    """uvicorn's proxy_headers turns X-Forwarded-Proto into the scheme the middleware reads."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = create_app(make())
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="*")
    with TestClient(app):  # runs the lifespan
        response = TestClient(proxied).get("/health/live", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" in response.headers


def test_cors_allowlist(make: Any, client: TestClient) -> None:
    allowed = "https://app.example.org"
    with TestClient(create_app(make(BOOKREC_CORS_ORIGINS=f"{allowed}, https://b.example"))) as c:
        ok = c.get("/health/live", headers={"Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        other = c.get("/health/live", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = {"Access-Control-Request-Method": "POST"}
        good = c.options("/api/v1/auth/login", headers={"Origin": allowed, **preflight})
        assert good.status_code == 200
        assert good.headers["access-control-allow-origin"] == allowed
        bad = c.options(
            "/api/v1/auth/login", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in bad.headers
    # no origins configured: no CORS headers at all
    default = client.get("/health/live", headers={"Origin": allowed})
    assert "access-control-allow-origin" not in default.headers


# -- body cap ------------------------------------------------------------------------------


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 413
    assert body["request_id"]


def test_two_megabyte_body_with_content_length_is_413(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login",
        content=b"{" + b" " * (2 * MIB) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_too_large(response)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_two_megabyte_chunked_body_is_413(client: TestClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b" " * (64 * 1024)

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(
                "/api/v1/auth/login",
                content=chunks(),
                headers={"Content-Type": "application/json"},
            )

    response = asyncio.run(send())
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(response)


def test_bodies_under_the_cap_pass(client: TestClient) -> None:
    response = login(client, "small@example.org")
    assert response.status_code == 401


# -- Redis ---------------------------------------------------------------------------------


def test_limits_are_shared_through_redis(
    make: Any, redis_server: redis.Redis, redis_prefix: str
) -> None:
    from bookrec.api.state import AppState

    settings = make(
        REDIS_URL=REDIS_URL,
        BOOKREC_REDIS_PREFIX=redis_prefix,
        BOOKREC_RATE_LIMIT_GENERAL="4/minute",
    )
    first_app, second_app = create_app(settings), create_app(settings)
    with TestClient(first_app) as first, TestClient(second_app) as second:
        state: AppState = first_app.state.bookrec
        assert state.rate_limiter.using_redis
        assert [first.get("/api/v1/me").status_code for _ in range(2)] == [401, 401]
        assert [second.get("/api/v1/me").status_code for _ in range(2)] == [401, 401]
        assert_rate_limited(first.get("/api/v1/me"))
        assert_rate_limited(second.get("/api/v1/me"))
    assert list(redis_server.scan_iter(match=f"{redis_prefix}*"))


def rate_limit_warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "redis_unavailable" and e["used_for"] == "rate limits"]


def test_redis_down_falls_back_to_memory_with_one_warning(make: Any) -> None:
    settings = make(REDIS_URL=CLOSED_REDIS, BOOKREC_RATE_LIMIT_GENERAL="3/minute")
    app = create_app(settings)
    with structlog.testing.capture_logs() as logs, TestClient(app) as client:
        statuses = [client.get("/api/v1/me").status_code for _ in range(3)]
        assert statuses == [401, 401, 401]  # answered, not 5xx
        assert_rate_limited(client.get("/api/v1/me"))
    assert len(rate_limit_warnings(logs)) == 1


def test_limiter_retries_redis_and_warns_once() -> None:
    limits = Limits.of(Settings(BOOKREC_RATE_LIMIT_GENERAL="2/minute"))
    clock = FakeClock()
    limiter = RateLimiter(limits, CLOSED_REDIS, "bookrec-test:", clock=clock)
    with structlog.testing.capture_logs() as logs:
        limiter.hit(limits.general, "general", "ip:a")  # tries Redis, falls back
        assert limiter.fallback.down and not limiter.using_redis
        clock.advance(RETRY_SECONDS + 1)
        assert not limiter.fallback.down
        limiter.hit(limits.general, "general", "ip:a")  # tries Redis again: still down
        assert limiter.fallback.down
        with pytest.raises(TooManyRequests) as raised:
            limiter.hit(limits.general, "general", "ip:a")
    assert raised.value.retry_after >= 1
    assert not limiter.using_redis
    assert len(rate_limit_warnings(logs)) == 1  # one warning per outage, not per attempt


def test_limiter_returns_to_redis_when_it_answers_again(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    limits = Limits.of(Settings(BOOKREC_RATE_LIMIT_GENERAL="5/minute"))
    clock = FakeClock()
    limiter = RateLimiter(limits, REDIS_URL, redis_prefix, clock=clock)
    with structlog.testing.capture_logs() as logs:
        limiter.fallback.failed(ConnectionError("simulated outage"))
        assert not limiter.using_redis
        limiter.hit(limits.general, "general", "ip:b")  # within the retry time: memory
        assert not limiter.using_redis
        clock.advance(RETRY_SECONDS + 1)
        limiter.hit(limits.general, "general", "ip:b")
    assert limiter.using_redis
    assert [e["event"] for e in logs] == ["redis_unavailable", "redis_recovered"]
