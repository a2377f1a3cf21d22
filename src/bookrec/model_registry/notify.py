"""Announcing a newly active version to every API worker (Redis PUBLISH), when Redis is set.

Workers also poll the active version (`BOOKREC_MODEL_POLL_SECONDS`), so an announcement that
cannot be sent only delays a switch: it is logged, never raised.
"""

from __future__ import annotations

import structlog

from bookrec.config import Settings
from bookrec.model_registry.registry import Notifier

log = structlog.get_logger(__name__)


def activations_channel(settings: Settings) -> str:
    """The Redis channel activations are announced on."""
    return f"{settings.redis_prefix}models"


def redis_notifier(settings: Settings) -> Notifier | None:
    """PUBLISH each newly active version's number, or None without `REDIS_URL`."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    channel = activations_channel(settings)

    def notify(number: int) -> None:
        try:
            client.publish(channel, str(number))
        except Exception as exc:  # best effort: workers poll the database too
            log.warning("model_notify_failed", version=number, error=f"{type(exc).__name__}: {exc}")

    return notify
