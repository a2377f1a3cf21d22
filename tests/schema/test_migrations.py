"""Migrations go down and up again on both databases."""

from __future__ import annotations

from sqlalchemy import inspect

from bookrec.db.engine import make_engine
from bookrec.schema.migrate import alembic_config, upgrade


def test_accounts_migration_downgrades_and_upgrades(database_url: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), "0001")
    engine = make_engine(database_url)
    try:
        assert not {"users", "refresh_tokens", "audit_log"} & set(inspect(engine).get_table_names())
        upgrade(database_url)
        inspector = inspect(engine)
        assert {"users", "refresh_tokens", "audit_log"} <= set(inspector.get_table_names())
    finally:
        engine.dispose()
