"""Prometheus metrics, summed over every process of a deployment that shares a directory.

`bookrec serve` points `PROMETHEUS_MULTIPROC_DIR` at a directory it empties at start, before
any worker imports prometheus-client (which reads the variable once, at import); each API
worker and the embedded training worker then write their samples to memory-mapped files
there, and `GET /metrics` in any worker sums them all (`exposition`). Without the variable
(tests, one-off commands) the metrics live in the process and `/metrics` shows that process.

Names and labels are bounded: routes are templates (`/api/v1/books/{book_id}`), never raw
paths. Counters of the hot path are bound to their labels once (`RequestMetrics.child`,
module-level children below), so counting a request costs a dict look-up and two locked
increments, no allocation beyond the first request of each (route, method, status).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from bookrec.observability.multiprocess import MULTIPROC_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The variant label of a list no experiment made.
NO_VARIANT = "none"

#: Latency buckets around the 100 ms target (seconds).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

HTTP_REQUESTS = Counter(
    "bookrec_http_requests",
    "HTTP requests answered, by route template, method and status",
    ("route", "method", "status"),
)
HTTP_LATENCY = Histogram(
    "bookrec_http_request_duration_seconds",
    "Time from a request's arrival to its last byte sent, by route template",
    ("route",),
    buckets=LATENCY_BUCKETS,
)
RECOMMENDATIONS = Counter(
    "bookrec_recommendations",
    "Lists answered, by strategy, source (precomputed, cache hit, scored) and variant",
    ("strategy", "source", "variant"),
)
SCORING = Histogram(
    "bookrec_scoring_duration_seconds",
    "Time to score and describe one list (cache misses only), by strategy",
    ("strategy",),
    buckets=LATENCY_BUCKETS,
)
CACHE = Counter(
    "bookrec_cache_lookups", "Recommendation cache look-ups, by result (hit, miss)", ("result",)
)
CACHE_HIT = CACHE.labels("hit")
CACHE_MISS = CACHE.labels("miss")
RATE_LIMITED = Counter(
    "bookrec_rate_limited", "Requests refused by a rate limit, by limit", ("limit",)
)
MODEL_ACTIVATIONS = Counter(
    "bookrec_model_activations",
    "Model versions made active, by action (activate, rollback, fallback)",
    ("action",),
)
MODEL_REFUSALS = Counter(
    "bookrec_model_refusals", "Model versions refused (artifacts failing their checks)"
)
TRAINING_JOBS = Counter(
    "bookrec_training_jobs", "Training jobs finished, by outcome (succeeded, failed)", ("outcome",)
)
TRAINING_DURATION = Histogram(
    "bookrec_training_job_duration_seconds",
    "Training job run time, by outcome",
    ("outcome",),
    buckets=JOB_BUCKETS,
)
IMPORT_ROWS = Counter(
    "bookrec_import_rows", "Rows imported, by kind (books, ratings, to_read, tags, ...)", ("kind",)
)

# the label sets of the hot path, bound once
_SOURCES = {"precomputed": "precomputed", "hit": "hit", "miss": "scored"}
_ANSWERS = {
    (strategy, source): RECOMMENDATIONS.labels(strategy, label, NO_VARIANT)
    for strategy in ("personal", "popular", "trending", "similar")
    for source, label in _SOURCES.items()
}
_SCORING = {
    strategy: SCORING.labels(strategy)
    for strategy in ("personal", "popular", "trending", "similar")
}


@lru_cache(maxsize=1)
def served_model_gauges() -> tuple[Gauge, Gauge]:
    """(version served, fallback) of this worker, one series per live process.

    Created on first use, by the processes that serve (a gauge exists in every process that
    creates it, and the training worker serves nothing).
    """
    version = Gauge(
        "bookrec_model_version_served",
        "The model version each API worker serves (0: none loaded)",
        multiprocess_mode="liveall",
    )
    fallback = Gauge(
        "bookrec_model_fallback",
        "1 when a worker serves another version than the active one, or popularity lists only",
        multiprocess_mode="liveall",
    )
    return version, fallback


_VARIANT_ANSWERS: dict[tuple[str, str, str], Counter] = {}


def count_answer(strategy: str, source: str, variant: str | None = None) -> None:
    """One list answered (`source` as `serving.service.Answer` names it: precomputed, hit,
    miss), by an experiment's `variant` or none."""
    if variant is None:
        _ANSWERS[strategy, source].inc()
        return
    child = _VARIANT_ANSWERS.get((strategy, source, variant))
    if child is None:  # variants are few (at most 10 an experiment): bound once each
        child = RECOMMENDATIONS.labels(strategy, _SOURCES[source], variant)
        _VARIANT_ANSWERS[strategy, source, variant] = child
    child.inc()


def observe_scoring(strategy: str, seconds: float) -> None:
    _SCORING[strategy].observe(seconds)


class RequestMetrics:
    """The request counter and latency histogram children, bound per (route, method, status)
    on first use and reused after."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def child(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        key = (route, method, status)
        found = self._children.get(key)
        if found is None:
            found = (HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route))
            self._children[key] = found
        return found

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        counter, histogram = self.child(route, method, status)
        counter.inc()
        histogram.observe(seconds)


def multiprocess_dir() -> Path | None:
    """The shared directory when this process writes its metrics to one."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(directory: Path) -> None:
    """Drop the per-worker gauges of processes that are gone (a worker that crashed and was
    replaced must not be shown serving a model). Their counters stay: counts never go back."""
    pids = {int(m.group(1)) for p in directory.iterdir() if (m := _LIVE_FILE.match(p.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's
            continue


def exposition() -> bytes:
    """The text format of every metric: all processes sharing the directory, or this one."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    _forget_dead_processes(directory)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 (a container's port)
    """Serve `/metrics` of this process and its children (a Celery worker's prefork pool) on
    `port`, from a thread."""
    from prometheus_client import start_http_server

    directory = multiprocess_dir()
    registry = REGISTRY
    if directory is not None:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]
    start_http_server(port, host, registry=registry)
