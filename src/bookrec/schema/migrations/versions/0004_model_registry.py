"""model registry

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("algo", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("checksums", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "status IN ('candidate', 'active', 'retired', 'refused')",
            name=op.f("ck_model_versions_model_status"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    # at most one active version, enforced by the database on both backends
    op.create_index(
        "uq_model_versions_one_active",
        "model_versions",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "model_activations",
        sa.Column(
            "activation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('activate', 'rollback', 'refuse-fallback')",
            name=op.f("ck_model_activations_activation_action"),
        ),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_model_activations_version_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("activation_id", name=op.f("pk_model_activations")),
    )
    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_activations_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_activations_version"), ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_activations_version"))
        batch_op.drop_index(batch_op.f("ix_model_activations_at"))
    op.drop_table("model_activations")
    op.drop_index("uq_model_versions_one_active", table_name="model_versions")
    op.drop_table("model_versions")
