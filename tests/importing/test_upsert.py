"""`db.upsert`: the same counts and rows whether the rows go in as multi-row VALUES or, on
PostgreSQL from `COPY_FROM_ROWS` rows, by COPY into a temporary table and one INSERT ... SELECT."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from bookrec.catalog.models import Tag
from bookrec.db import upsert as upsert_module
from bookrec.db.upsert import upsert

tags = Tag.__table__


def _rows(count: int, suffix: str = "") -> list[dict[str, object]]:
    return [{"tag_id": i, "name": f"tag-{i}{suffix if i % 100 == 0 else ''}"} for i in range(count)]


@pytest.mark.parametrize("count", [10, upsert_module.COPY_FROM_ROWS + 500])
def test_upsert_inserts_then_writes_only_what_changed(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        assert upsert(connection, tags, _rows(count), keys=["tag_id"]) == count
    with engine.begin() as connection:
        assert upsert(connection, tags, _rows(count), keys=["tag_id"]) == 0
        # the temporary table is gone: a second upsert in the same transaction works too
        changed = upsert(connection, tags, _rows(count, "-renamed"), keys=["tag_id"])
        assert changed == len(range(0, count, 100))
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(tags)) == count
        renamed = connection.scalar(select(tags.c.name).where(tags.c.tag_id == 0))
    assert renamed == "tag-0-renamed"


def test_upsert_without_updates_only_inserts_new_keys(engine: Engine) -> None:
    count = upsert_module.COPY_FROM_ROWS + 10
    with engine.begin() as connection:
        assert upsert(connection, tags, _rows(count), keys=["tag_id"], update=[]) == count
        assert upsert(connection, tags, _rows(count + 5, "-x"), keys=["tag_id"], update=[]) == 5
    with engine.connect() as connection:
        assert connection.scalar(select(tags.c.name).where(tags.c.tag_id == 0)) == "tag-0"
