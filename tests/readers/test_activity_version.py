"""The activity version: every change of a reader's ratings or shelf moves it, in the same
transaction, and nothing else does (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from bookrec.db.session import unit_of_work
from bookrec.importing.importer import import_directory
from bookrec.readers import repository
from bookrec.readers.models import ACTIVITY_VERSION_START_RANGE, Reader


def versions(engine: Engine) -> dict[int, int]:
    """Data set user id -> activity version."""
    with unit_of_work(engine) as session:
        rows = session.execute(select(Reader.external_id, Reader.activity_version))
        return {int(external): int(version) for external, version in rows if external is not None}


def version_of(engine: Engine, reader_id: int) -> int:
    with unit_of_work(engine) as session:
        found = repository.activity_version(session.connection(), reader_id=reader_id)
    assert found is not None
    return found.activity_version


def test_every_write_of_ratings_or_shelf_moves_the_version(imported: Engine) -> None:
    with unit_of_work(imported) as session:
        reader_id = repository.reader_ids_by_external(session.connection(), [1])[1]
    steps = [
        ("a new rating", lambda c: repository.insert_rating(c, reader_id, 299, 4, 1), 1),
        ("the same rating again", lambda c: repository.insert_rating(c, reader_id, 299, 4, 2), 0),
        ("a changed rating", lambda c: repository.update_rating(c, reader_id, 299, 2, 3), 1),
        ("an un-rating", lambda c: repository.delete_rating(c, reader_id, 299), 1),
        ("un-rating what is not rated", lambda c: repository.delete_rating(c, reader_id, 299), 0),
        ("shelving", lambda c: repository.insert_shelf_item(c, reader_id, 298, 4), 1),
        ("shelving again", lambda c: repository.insert_shelf_item(c, reader_id, 298, 5), 0),
        ("unshelving", lambda c: repository.delete_shelf_item(c, reader_id, 298), 1),
        ("unshelving again", lambda c: repository.delete_shelf_item(c, reader_id, 298), 0),
    ]
    for what, write, moves in steps:
        before = version_of(imported, reader_id)
        with unit_of_work(imported) as session:
            write(session.connection())
        assert version_of(imported, reader_id) == before + moves, what


def test_a_rolled_back_write_leaves_the_version(imported: Engine) -> None:
    with unit_of_work(imported) as session:
        reader_id = repository.reader_ids_by_external(session.connection(), [2])[2]
    before = version_of(imported, reader_id)

    def rate_then_fail() -> None:
        with unit_of_work(imported) as session:
            repository.insert_rating(session.connection(), reader_id, 297, 5, 1)
            raise RuntimeError("the request failed later")

    with pytest.raises(RuntimeError):
        rate_then_fail()
    assert version_of(imported, reader_id) == before


def test_imports_move_the_versions_of_readers_whose_rows_they_change(
    engine: Engine, small_dataset: Path
) -> None:
    import_directory(engine, small_dataset)
    first = versions(engine)
    assert len(first) == 150
    assert len(set(first.values())) == 150  # random starts
    assert all(0 <= v < ACTIVITY_VERSION_START_RANGE for v in first.values())

    import_directory(engine, small_dataset)  # the same data: nothing changes
    assert versions(engine) == first

    with (small_dataset / "ratings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    changed_user = int(rows[0]["user_id"])
    rows[0]["rating"] = str(6 - int(rows[0]["rating"])) if rows[0]["rating"] != "3" else "4"
    with (small_dataset / "ratings.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import_directory(engine, small_dataset)
    after = versions(engine)
    assert after[changed_user] > first[changed_user]
    moved = {user for user in first if after[user] != first[user]}
    if engine.dialect.name == "postgresql":
        assert moved == {changed_user}  # exactly the readers whose rows changed
    assert changed_user in moved


def test_every_readers_version_is_read_in_bulk(imported: Engine) -> None:
    with unit_of_work(imported) as session:
        connection = session.connection()
        reader_ids, activity = repository.all_activity_versions(connection)
        rows = session.execute(
            select(Reader.reader_id, Reader.activity_version).order_by(Reader.reader_id)
        ).all()
        shelf_readers, shelf_books = repository.all_shelves(connection)
    assert reader_ids.dtype == activity.dtype == np.int64
    assert reader_ids.tolist() == [r for r, _ in rows] and activity.tolist() == [v for _, v in rows]
    assert len(shelf_readers) == len(shelf_books)
