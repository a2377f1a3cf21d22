"""The recommendation cache: the worker's TTL LRU, Redis shared by workers, Redis down."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis
import structlog

from bookrec.config import Settings
from bookrec.db.engine import make_engine
from bookrec.db.redis import RETRY_SECONDS, fast_client
from bookrec.serving.cache import RecommendationCache, cache_key
from bookrec.serving.engine import ServingEngine
from tests.fixtures.clock import FakeClock
from tests.fixtures.redis import REDIS_URL


def test_local_level_expires_and_is_bounded() -> None:
    clock = FakeClock()
    cache = RecommendationCache(size=2, ttl_seconds=300, clock=clock)
    cache.put("a", b"1")
    cache.put("b", b"2")
    cache.put("c", b"3")  # least recently used goes
    assert cache.get("a") is None and cache.get("c") == b"3"
    clock.advance(299)
    assert cache.get("c") == b"3"
    clock.advance(2)
    assert cache.get("c") is None
    cache.put("d", b"4")
    cache.clear_local()
    assert cache.get("d") is None


def test_workers_share_lists_through_redis(redis_server: redis.Redis, redis_prefix: str) -> None:
    first = RecommendationCache(100, 60, fast_client(REDIS_URL), redis_prefix)
    second = RecommendationCache(100, 60, fast_client(REDIS_URL), redis_prefix)
    key = cache_key(("7", "personal", "abc", 42, "f00"))
    first.put(key, b'{"items": []}')
    assert second.get(key) == b'{"items": []}'  # another worker's list
    assert 0 < redis_server.ttl(f"{redis_prefix}recs:{key}") <= 60


def test_redis_down_is_skipped_logged_once_and_the_local_level_serves() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    clock = FakeClock()
    cache = RecommendationCache(100, 60, fast_client(f"redis://127.0.0.1:{port}/0"), clock=clock)
    with structlog.testing.capture_logs() as logs:
        started = time.perf_counter()
        assert cache.get("k") is None
        cache.put("k", b"body")
        assert cache.get("k") == b"body"
        for _ in range(20):
            cache.get("other")
        elapsed = time.perf_counter() - started
        assert cache.fallback.down
        clock.advance(RETRY_SECONDS + 1)  # time to ask Redis again: it is still down
        assert not cache.fallback.down
        cache.get("other")
    warnings = [e for e in logs if e["event"] == "redis_unavailable"]
    assert len(warnings) == 1 and warnings[0]["used_for"] == "recommendation cache"
    assert elapsed < 1.0  # one failed attempt, then Redis is left alone
    assert cache.fallback.down


def test_lookups_leave_the_event_loop_when_they_need_the_network(tmp_path: Path) -> None:
    """SQLite alone is read in-process on the event loop; Redis means a round trip per look-up."""
    engine = make_engine(f"sqlite:///{tmp_path / 'bookrec.db'}")
    try:
        local = Settings(BOOKREC_VAR_DIR=str(tmp_path), REDIS_URL="")
        shared = Settings(BOOKREC_VAR_DIR=str(tmp_path), REDIS_URL=REDIS_URL)
        assert ServingEngine.of(local, engine).recommendations.lookups_inline
        assert not ServingEngine.of(shared, engine).recommendations.lookups_inline
    finally:
        engine.dispose()
