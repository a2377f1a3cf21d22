"""model_versions.status may be 'pruned': artifacts deleted after the retention

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_PRUNED = "status IN ('candidate', 'active', 'retired', 'refused', 'pruned')"
WITHOUT_PRUNED = "status IN ('candidate', 'active', 'retired', 'refused')"


def _status_check(condition: str) -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("ck_model_versions_model_status"), type_="check")
        batch.create_check_constraint("model_status", condition)


def upgrade() -> None:
    _status_check(WITH_PRUNED)


def downgrade() -> None:
    op.execute("UPDATE model_versions SET status = 'refused' WHERE status = 'pruned'")
    _status_check(WITHOUT_PRUNED)
