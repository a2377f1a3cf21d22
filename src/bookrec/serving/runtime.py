"""Process settings for an API worker: how it uses memory and threads while serving.

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
import sys

import structlog

log = structlog.get_logger(__name__)

M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
ARENAS = 2
SWITCH_INTERVAL_SECONDS = 0.0005


def tune_worker_process() -> None:
    """Apply the memory and thread settings above to this process (idempotent)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1, user_api="blas")
    # a thread back from a query waits for the GIL at most this long (the default is 5 ms)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
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
