"""books.deleted_at (soft delete by an admin: gone from the catalogue, ratings kept) and an
index on books.updated_at (serving's cheap catalogue-changed check reads its maximum)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column and create_index alter `books` in place on SQLite too: a batch rebuild would
    # drop the search triggers of migration 0009
    op.add_column("books", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_books_updated_at", "books", ["updated_at"])
    op.create_index("ix_books_isbn", "books", ["isbn"])
    op.create_index("ix_books_isbn13", "books", ["isbn13"])


def downgrade() -> None:
    op.drop_index("ix_books_isbn13", "books")
    op.drop_index("ix_books_isbn", "books")
    op.drop_index("ix_books_updated_at", "books")
    op.execute("DELETE FROM books WHERE deleted_at IS NOT NULL")
    op.drop_column("books", "deleted_at")
