"""Experiments, their variants, and what each reader was shown and clicked, in the database.

At most one experiment runs per surface: a partial unique index on (surface) where the status
is 'running' makes the database refuse a second, whatever the code does. An exposure is one
(experiment, reader, book) pair shown at least once; `clicked_at` is set by the first click on
it. Counting pairs, not events, keeps a list fetched twice from counting twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookrec.accounts.models import User
from bookrec.catalog.models import Book
from bookrec.db.base import Base, UTCDateTime, utcnow
from bookrec.readers.models import Reader

STATUSES = ("draft", "running", "stopped", "shipped")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'running', 'stopped', 'shipped')", name="experiment_status"
        ),
        CheckConstraint("surface IN ('personal')", name="experiment_surface"),
        Index(
            "uq_experiments_one_running",
            "surface",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    surface: Mapped[str] = mapped_column(String(16), default="personal")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey(User.user_id, ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_variant: Mapped[str | None] = mapped_column(String(50))

    variants: Mapped[list[ExperimentVariant]] = relationship(
        order_by="ExperimentVariant.position", cascade="all, delete-orphan", lazy="selectin"
    )


class ExperimentVariant(Base):
    __tablename__ = "experiment_variants"
    __table_args__ = (
        UniqueConstraint("experiment_id", "name"),
        CheckConstraint(
            "strategy IS NULL OR strategy IN ('personal', 'popular', 'trending')",
            name="variant_strategy",
        ),
        CheckConstraint("weight > 0", name="variant_weight"),
    )

    variant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey(Experiment.experiment_id, ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(50))
    strategy: Mapped[str | None] = mapped_column(String(16))
    #: a registered model version; None: the active version at answer time
    model_version: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, default=1.0)


class Exposure(Base):
    """A book shown to a reader in an experiment's list (and whether they clicked it)."""

    __tablename__ = "experiment_exposures"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey(Experiment.experiment_id, ondelete="CASCADE"), primary_key=True
    )
    reader_id: Mapped[int] = mapped_column(
        ForeignKey(Reader.reader_id, ondelete="CASCADE"), primary_key=True, index=True
    )
    book_id: Mapped[int] = mapped_column(
        ForeignKey(Book.book_id, ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(50))
    shown_at: Mapped[int] = mapped_column(BigInteger)
    clicked_at: Mapped[int | None] = mapped_column(BigInteger)
