"""readers.activity_version: one counter that every change of a reader's activity moves

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a random start per reader, below 2**62 (see readers.models.fresh_activity_version)
_RANDOM_START = {
    "sqlite": "abs(random()) % 4611686018427387904",
    "postgresql": "floor(random() * 4611686018427387904)::bigint",
}


def upgrade() -> None:
    # a plain ADD COLUMN (never a batch rebuild: dropping `readers` on SQLite would cascade)
    op.add_column(
        "readers",
        sa.Column("activity_version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE readers SET activity_version = {_RANDOM_START[dialect]}")


def downgrade() -> None:
    op.drop_column("readers", "activity_version")
