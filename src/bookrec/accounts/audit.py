"""The audit log: who did what security-relevant thing, when, from where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from bookrec.accounts.models import User
from bookrec.db.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_log"

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey(User.user_id, ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True)
class Origin:
    """Where a request came from, as the audit log records it."""

    ip: str | None = None
    request_id: str | None = None


def record(
    session: Session,
    action: str,
    *,
    origin: Origin | None = None,
    actor_user_id: int | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to the audit log, in the caller's unit of work."""
    origin = origin or Origin()
    event = AuditEvent(
        action=action,
        actor_user_id=actor_user_id,
        target=None if target is None else target[:255],
        ip=None if origin.ip is None else origin.ip[:45],
        request_id=None if origin.request_id is None else origin.request_id[:64],
        details=details or {},
    )
    session.add(event)
    return event
