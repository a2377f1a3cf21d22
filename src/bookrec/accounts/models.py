"""Readers (everyone whose activity the recommenders learn from), accounts and refresh tokens.

A reader imported from a data set has `external_id` (the data set's `user_id`) and no
account; an account created through the API gets a reader without an external id. The two
meet when an account is linked to an imported reader (`users.reader_id` then points at it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bookrec.db.base import Base, utcnow


class Reader(Base):
    __tablename__ = "readers"

    reader_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.dataset_id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """An account that logs in; every account has its own reader row."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('reader', 'admin')", name="user_role"),)

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="reader")
    reader_id: Mapped[int] = mapped_column(
        ForeignKey("readers.reader_id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class RefreshToken(Base):
    """One opaque refresh token, kept only as its sha256; a login's rotations share a family."""

    __tablename__ = "refresh_tokens"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
