"""Accounts and their refresh tokens.

Every account has a reader (`readers.models.Reader`) that its ratings and shelf belong to;
an account can also be linked to a reader imported from a data set (`users.reader_id` then
points at it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.db.base import Base, UTCDateTime, utcnow
from bookrec.readers.models import Reader


class User(Base):
    """An account that logs in; every account has its own reader row."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('reader', 'admin')", name="user_role"),
        {"sqlite_autoincrement": True},  # an erased account's id never names a newcomer
    )

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="reader")
    reader_id: Mapped[int] = mapped_column(
        ForeignKey(Reader.reader_id, ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class RefreshToken(Base):
    """One opaque refresh token, kept only as its sha256; a login's rotations share a family."""

    __tablename__ = "refresh_tokens"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.user_id, ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
