"""Row blocks of a matrix worked on a few threads at once: numpy, scipy and BLAS free the GIL
in their heavy parts, so blocks run in parallel; each worker holds its own block (a block x
items slab), hence the cap."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def worker_count() -> int:
    """Threads for row-block work: the CPUs this process may run on, at most 4."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(cpus, 4))  # each worker holds a dense block x items slab


def for_row_blocks(n: int, block: int, work: Callable[[int, int], None]) -> None:
    """Run work(start, stop) over row blocks of n on a few threads; `work` writes its own rows."""
    starts = range(0, n, block)
    workers = min(worker_count(), len(starts))
    if workers <= 1:
        for start in starts:
            work(start, min(start + block, n))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda start: work(start, min(start + block, n)), starts):
            pass
