"""What serving holds of a reader whose account is erased, wiped at once.

The database rows go in the erasure's unit of work (`accounts.privacy.erase`). Serving also
holds the reader's list in two derived places: the list each model version precomputed at
training (`lists/` in every version still on disk) and finished lists in the cache. Both are
wiped here, in the same unit of work, before it commits: the lists in place (every worker
maps those files, so none can serve the row again), the cache in this worker and Redis, and
the other workers are told through Redis to drop theirs (without Redis, their copies can no
longer be reached, since no request can name the reader, and expire within the cache TTL).
"""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from bookrec.serving.engine import ServingEngine
from bookrec.serving.precomputed import wipe_reader

log = structlog.get_logger(__name__)


def forget_reader(session: Session, serving: ServingEngine, reader_id: int) -> dict[str, int]:
    """Wipe the reader's precomputed list from every version on disk (checksums recorded
    again) and their cached lists; returns how many of each went here."""
    registry = serving.models.registry
    versions = 0
    for version in registry.versions(session):
        lists = version.path / "lists"
        if lists.is_dir() and wipe_reader(lists, reader_id):
            registry.rehash(session, version.number, "lists")
            versions += 1
    cached = serving.cache.forget_reader(reader_id)
    serving.refresher.announce_forget(reader_id)
    log.info("reader_forgotten", precomputed_lists=versions, cached_lists=cached)
    return {"precomputed_lists": versions, "cached_lists": cached}
