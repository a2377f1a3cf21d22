"""Model versions and their activation history, as the database records them.

At most one version is active: a partial unique index on `status` where it is 'active'
makes the database refuse a second one, whatever the code does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.db.base import Base, UTCDateTime, utcnow


class ModelVersionRow(Base):
    """One trained model: what it is, what it was trained on, how it scored, where it lives."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('candidate', 'active', 'retired', 'refused', 'pruned')",
            name="model_status",
        ),
        Index(
            "uq_model_versions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    algo: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_uri: Mapped[str] = mapped_column(Text)
    checksums: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelActivation(Base):
    """One change of the active version; rollback reads these to find what came before."""

    __tablename__ = "model_activations"
    __table_args__ = (
        CheckConstraint(
            "action IN ('activate', 'rollback', 'refuse-fallback')", name="activation_action"
        ),
    )

    activation_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    version: Mapped[int] = mapped_column(
        ForeignKey("model_versions.version", ondelete="CASCADE"), index=True
    )
    previous_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
