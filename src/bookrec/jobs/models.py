"""The `training_jobs` table: one row per requested training run and what became of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.db.base import Base, UTCDateTime, utcnow

STATUSES = ("queued", "running", "succeeded", "failed")
TRIGGERS = ("api", "cli", "schedule")
KINDS = ("train",)


class TrainingJob(Base):
    """A training run: the request, where it is (stage, percent), who runs it, the outcome."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="job_status"
        ),
        CheckConstraint("kind IN ('train')", name="job_kind"),
        CheckConstraint("trigger IN ('api', 'cli', 'schedule')", name="job_trigger"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="job_progress"),
        Index("ix_training_jobs_status_created_at", "status", "created_at"),
    )

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="train")
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
