"""Ranked, typo-tolerant book search: a denormalised `tag_names` column on books and the
indexes that search reads, kept in sync by the database itself on every write

PostgreSQL: a stored generated `search_vector` (tsvector, weighted title > authors/series >
tags) with a GIN index for ts_rank, and a pg_trgm GIN index over title, original title,
authors and series for typo tolerance. SQLite: two FTS5 tables over the same columns (words
for bm25, trigrams for typos), external-content tables kept in step by triggers. A later
migration must not rebuild `books` on SQLite (batch mode with a table copy): that drops the
triggers; add columns and indexes in place.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same expression is spelled in bookrec.catalog.search (the planner uses the trigram
# index only for a query over this exact expression).
FUZZY_TEXT = (
    "(title || ' ' || coalesce(original_title, '') || ' ' || authors || ' ' "
    "|| coalesce(series, ''))"
)
SEARCH_VECTOR = (
    "setweight(to_tsvector('simple', title || ' ' || coalesce(original_title, '')), 'A') || "
    "setweight(to_tsvector('simple', authors || ' ' || coalesce(series, '')), 'B') || "
    "setweight(to_tsvector('simple', tag_names), 'C')"
)
FTS_COLUMNS = "title, original_title, authors, series, tag_names"
NEW_ROW = "new.book_id, new.title, new.original_title, new.authors, new.series, new.tag_names"
OLD_ROW = "old.book_id, old.title, old.original_title, old.authors, old.series, old.tag_names"
FTS_TABLES = {"books_fts": "unicode61 remove_diacritics 2", "books_trigram": "trigram"}


def upgrade() -> None:
    with op.batch_alter_table("books") as batch:
        batch.add_column(sa.Column("tag_names", sa.Text(), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            f"ALTER TABLE books ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_books_search_vector ON books USING gin (search_vector)")
        op.execute(
            f"CREATE INDEX ix_books_fuzzy_text ON books USING gin ({FUZZY_TEXT} gin_trgm_ops)"
        )
        return
    for table, tokenizer in FTS_TABLES.items():
        op.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({FTS_COLUMNS}, content='books', "
            f"content_rowid='book_id', tokenize='{tokenizer}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_insert AFTER INSERT ON books BEGIN "
            f"INSERT INTO {table}(rowid, {FTS_COLUMNS}) VALUES ({NEW_ROW}); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_delete AFTER DELETE ON books BEGIN "
            f"INSERT INTO {table}({table}, rowid, {FTS_COLUMNS}) VALUES ('delete', {OLD_ROW}); "
            "END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_update AFTER UPDATE OF {FTS_COLUMNS} ON books BEGIN "
            f"INSERT INTO {table}({table}, rowid, {FTS_COLUMNS}) VALUES ('delete', {OLD_ROW}); "
            f"INSERT INTO {table}(rowid, {FTS_COLUMNS}) VALUES ({NEW_ROW}); END"
        )
        op.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_books_fuzzy_text")
        op.execute("DROP INDEX ix_books_search_vector")
        op.execute("ALTER TABLE books DROP COLUMN search_vector")
    else:
        for table in FTS_TABLES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_{event}")
            op.execute(f"DROP TABLE {table}")
    with op.batch_alter_table("books") as batch:
        batch.drop_column("tag_names")
