"""experiments: variants, exposures and clicks

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_variant", sa.String(length=50), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped', 'shipped')",
            name=op.f("ck_experiments_experiment_status"),
        ),
        sa.CheckConstraint(
            "surface IN ('personal')", name=op.f("ck_experiments_experiment_surface")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.user_id"],
            name=op.f("fk_experiments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )
    op.create_index(op.f("ix_experiments_created_by"), "experiments", ["created_by"])
    # at most one running experiment per surface, enforced by the database on both backends
    op.create_index(
        "uq_experiments_one_running",
        "experiments",
        ["surface"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "experiment_variants",
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "strategy IS NULL OR strategy IN ('personal', 'popular', 'trending')",
            name=op.f("ck_experiment_variants_variant_strategy"),
        ),
        sa.CheckConstraint("weight > 0", name=op.f("ck_experiment_variants_variant_weight")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_experiment_variants_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("variant_id", name=op.f("pk_experiment_variants")),
        sa.UniqueConstraint(
            "experiment_id", "name", name=op.f("uq_experiment_variants_experiment_id")
        ),
    )
    op.create_index(
        op.f("ix_experiment_variants_experiment_id"), "experiment_variants", ["experiment_id"]
    )
    op.create_table(
        "experiment_exposures",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=50), nullable=False),
        sa.Column("shown_at", sa.BigInteger(), nullable=False),
        sa.Column("clicked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_experiment_exposures_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.reader_id"],
            name=op.f("fk_experiment_exposures_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["books.book_id"],
            name=op.f("fk_experiment_exposures_book_id_books"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "experiment_id", "reader_id", "book_id", name=op.f("pk_experiment_exposures")
        ),
    )
    op.create_index(
        op.f("ix_experiment_exposures_reader_id"), "experiment_exposures", ["reader_id"]
    )


def downgrade() -> None:
    op.drop_table("experiment_exposures")
    op.drop_table("experiment_variants")
    op.drop_index("uq_experiments_one_running", table_name="experiments")
    op.drop_table("experiments")
