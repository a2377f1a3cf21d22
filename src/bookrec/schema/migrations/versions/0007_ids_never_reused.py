"""users and readers ids are never reused (SQLite AUTOINCREMENT)

An id freed by an erased account must not name a newcomer: exports and audit rows match by
id. PostgreSQL sequences never hand out an id twice already; SQLite reuses the largest rowid
unless the key is declared AUTOINCREMENT, which needs the table rebuilt (env.py turns
foreign keys off for that, so the rebuild cascades nothing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("readers", "users")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
