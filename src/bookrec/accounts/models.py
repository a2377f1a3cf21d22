"""Readers: everyone whose activity the recommenders learn from.

A reader imported from a data set has `external_id` (the data set's `user_id`) and no
account; an account created through the API gets a reader without an external id. The two
meet when an account is linked to an imported reader.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer
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
