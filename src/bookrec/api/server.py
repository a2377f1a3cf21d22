"""The entry point of `bookrec serve`'s worker processes: tune the process, then build the app.

Uvicorn imports `served_app` in each worker it starts. The tuning is process-wide, so it
belongs here and not in `create_app`, which tests and other programs also call.

Requests are scored in parallel threads, each allocating a few megabytes of numpy arrays.
With glibc's defaults, every thread may get a malloc arena of its own and the threshold for
returning big blocks to the system grows after the first free, so a worker's memory climbs
to several times what it uses. Big blocks are therefore always mapped and unmapped, and
arenas are few. BLAS runs single-threaded: parallelism comes from requests, not from
splitting one small product over cores that are already busy.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import structlog
from fastapi import FastAPI

from bookrec.api.app import create_app
from bookrec.config import load_settings
from bookrec.observability.logging import configure_logging

log = structlog.get_logger(__name__)

M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
ARENAS = 2


def tune_worker_process() -> None:
    """Apply the memory and thread settings above to this process (idempotent)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1, user_api="blas")
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl, macOS): their defaults stand
        return
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_ARENA_MAX, ARENAS)):
        log.warning("mallopt_refused")


def served_app() -> FastAPI:
    """The app as `bookrec serve` runs it: logging set up, in a tuned worker process."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    tune_worker_process()
    return create_app(settings)
