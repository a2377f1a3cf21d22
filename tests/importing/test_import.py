"""Import end to end on SQLite and PostgreSQL: counts, idempotency, all-or-nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from bookrec.errors import ImportFailed
from bookrec.importing import bulk
from bookrec.importing.importer import import_directory

TABLES = [
    "datasets",
    "books",
    "authors",
    "book_authors",
    "tags",
    "book_tags",
    "readers",
    "ratings",
    "shelf",
    "events",
]


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order (minus import timestamps)."""
    result = {}
    with engine.connect() as connection:
        for table in TABLES:
            rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
            result[table] = [
                tuple(v for k, v in row._mapping.items() if k not in ("imported_at",))
                for row in rows
            ]
    return result


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def csv_rows(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for _ in handle) - 1


def test_import_loads_every_file(engine: Engine, small_dataset: Path) -> None:
    report = import_directory(engine, small_dataset)
    ratings = csv_rows(small_dataset / "ratings.csv")
    assert report.files["ratings.csv"] == ratings
    assert count(engine, "books") == 300
    assert count(engine, "tags") == 200
    assert count(engine, "book_tags") == 120
    assert count(engine, "ratings") == ratings
    assert count(engine, "shelf") == 20
    assert count(engine, "readers") == 150
    with engine.connect() as connection:
        book = connection.execute(
            text(
                "SELECT title, series, original_publication_year, language_code FROM books "
                "WHERE book_id = 1"
            )
        ).one()
        authors = (
            connection.execute(
                text(
                    "SELECT a.name FROM book_authors ba JOIN authors a USING (author_id) "
                    "WHERE ba.book_id = 2 ORDER BY ba.position"
                )
            )
            .scalars()
            .all()
        )
        synthetic = connection.execute(text("SELECT synthetic FROM datasets")).scalar_one()
    assert book == ("The Hunger Games (The Hunger Games, #1)", "The Hunger Games", 2008, "eng")
    assert authors == ["J.K. Rowling", "Mary GrandPré"]
    assert not synthetic


def test_bulk_load_leaves_keys_and_constraints_in_place(
    engine: Engine, small_dataset: Path
) -> None:
    """The PostgreSQL fast path drops and rebuilds keys; they must all be back."""
    import_directory(engine, small_dataset)
    check = inspect(engine)
    for table in ("ratings", "shelf"):
        assert check.get_pk_constraint(table)["constrained_columns"] == ["reader_id", "book_id"]
        assert {fk["referred_table"] for fk in check.get_foreign_keys(table)} == {
            "books",
            "readers",
        }
    with engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(
            text("INSERT INTO ratings (reader_id, book_id, rating) VALUES (1, 999999, 5)")
        )
    with engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(
            text(
                "INSERT INTO ratings (reader_id, book_id, rating) "
                "SELECT reader_id, book_id, rating FROM ratings LIMIT 1"
            )
        )
    with engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(text("UPDATE ratings SET rating = 9 WHERE rating = 5"))
    # a reader created after the import gets a fresh id from the sequence
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO readers (created_at) VALUES (CURRENT_TIMESTAMP)"))


def test_reimport_changes_nothing(engine: Engine, small_dataset: Path) -> None:
    import_directory(engine, small_dataset)
    before = snapshot(engine)
    report = import_directory(engine, small_dataset)
    assert snapshot(engine) == before
    assert all(written == 0 for written in report.written.values()), report.written
    assert report.readers_created == 0


def test_reimport_updates_changed_values(engine: Engine, small_dataset: Path) -> None:
    import_directory(engine, small_dataset)
    path = small_dataset / "ratings.csv"
    lines = path.read_text().splitlines()
    user, book, rating, stamp = lines[1].split(",")
    lines[1] = f"{user},{book},{6 - int(rating) if rating != '3' else 4},{stamp}"
    path.write_text("\n".join(lines) + "\n")
    report = import_directory(engine, small_dataset)
    assert report.written["ratings"] == 1
    assert count(engine, "ratings") == csv_rows(path)


def test_reimport_adds_only_new_shelf_pairs(engine: Engine, small_dataset: Path) -> None:
    """The to-read file has no value to change: a re-import adds the pairs not yet shelved
    (one row for a pair listed twice) and rewrites none of the others."""
    first = import_directory(engine, small_dataset)
    shelved = count(engine, "shelf")
    with (small_dataset / "to_read.csv").open("a") as handle:
        handle.write("1,299\n1,299\n2,15\n")  # a new pair twice; user 2 already has book 15
    report = import_directory(engine, small_dataset)
    assert set(report.written) == set(first.written)
    assert sum(report.written.values()) == 1, report.written
    assert count(engine, "shelf") == shelved + 1


def test_a_nul_byte_in_a_book_field_fails_with_its_place(
    engine: Engine, small_dataset: Path
) -> None:
    """PostgreSQL cannot store a NUL in text: every backend refuses it, naming line and column."""
    path = small_dataset / "books.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    title = rows[0].index("title")
    rows[3][title] = "Dune\x00Messiah"
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    with pytest.raises(ImportFailed, match=r"books.csv, line 4, column 'title'.*NUL byte"):
        import_directory(engine, small_dataset)
    assert count(engine, "books") == 0


def test_bad_rating_fails_with_location_and_keeps_nothing(
    engine: Engine, small_dataset: Path, tmp_path: Path
) -> None:
    import_directory(engine, small_dataset)
    before = snapshot(engine)
    # a second data set that would add readers and ratings, with one bad value deep inside
    second = tmp_path / "second"
    second.mkdir()
    with (small_dataset / "ratings.csv").open() as source:
        rows = list(csv.reader(source))
    header, body = rows[0], rows[1:]
    new_rows = [[str(int(r[0]) + 10_000), *r[1:]] for r in body]
    bad_line = len(new_rows) - 5
    new_rows[bad_line - 2][2] = "7"
    with (second / "ratings.csv").open("w", newline="") as target:
        csv.writer(target, lineterminator="\n").writerows([header, *new_rows])
    with pytest.raises(ImportFailed) as caught:
        import_directory(engine, second)
    error = caught.value
    assert (error.file, error.line, error.column, error.value) == (
        "ratings.csv",
        bad_line,
        "rating",
        7,
    )
    assert f"ratings.csv, line {bad_line}, column 'rating'" in str(error)
    assert snapshot(engine) == before


def test_bad_rating_into_empty_tables_keeps_catalog_and_keys(
    engine: Engine, small_dataset: Path, tmp_path: Path
) -> None:
    """The fast path (empty ratings table) fails as cleanly as the merge path."""
    catalog_only = tmp_path / "catalog"
    catalog_only.mkdir()
    for name in ("books.csv", "tags.csv", "book_tags.csv"):
        (catalog_only / name).write_bytes((small_dataset / name).read_bytes())
    import_directory(engine, catalog_only)
    before = snapshot(engine)
    ratings = small_dataset / "ratings.csv"
    lines = ratings.read_text().splitlines()
    fields = lines[2000].split(",")
    fields[2] = "7"
    lines[2000] = ",".join(fields)
    ratings.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFailed, match=r"ratings.csv, line 2001, column 'rating': 7"):
        import_directory(engine, small_dataset)
    assert snapshot(engine) == before
    check = inspect(engine)
    assert check.get_pk_constraint("ratings")["constrained_columns"] == ["reader_id", "book_id"]
    assert len(check.get_foreign_keys("ratings")) == 2


def test_failure_on_first_import_leaves_database_empty(engine: Engine, small_dataset: Path) -> None:
    path = small_dataset / "to_read.csv"
    path.write_text(path.read_text() + "5,999999\n")
    with pytest.raises(ImportFailed, match=r"to_read.csv, line 22, column 'book_id': 999999"):
        import_directory(engine, small_dataset)
    assert all(not rows for rows in snapshot(engine).values())


def test_duplicate_pair_in_file_keeps_last_row(engine: Engine, small_dataset: Path) -> None:
    path = small_dataset / "ratings.csv"
    with path.open() as handle:
        first = handle.readlines()[1].strip().split(",")
    with path.open("a") as handle:
        handle.write(f"{first[0]},{first[1]},{6 - int(first[2])},{first[3]}\n")
    import_directory(engine, small_dataset)
    with engine.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT r.rating FROM ratings r JOIN readers u USING (reader_id) "
                "WHERE u.external_id = :u AND r.book_id = :b"
            ),
            {"u": int(first[0]), "b": int(first[1])},
        ).scalar_one()
    assert stored == 6 - int(first[2])
    assert count(engine, "ratings") == csv_rows(path) - 1


def test_synthetic_flag_is_recorded(engine: Engine, small_dataset: Path) -> None:
    import_directory(engine, small_dataset, name="synth", synthetic=True, notes="generated")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT name, synthetic, notes FROM datasets")).one()
    assert tuple(row) == ("synth", True, "generated")


def test_movielens_imports(engine: Engine, movielens: Path) -> None:
    report = import_directory(engine, movielens)
    assert (
        count(engine, "ratings")
        == report.files["ratings.csv"]
        == csv_rows(movielens / "ratings.csv")
    )
    assert count(engine, "readers") == 671


def stored_ratings(engine: Engine) -> dict[tuple[int, int], tuple[int, int | None]]:
    """(user id in the file, book) -> (rating, rated_at) of every stored rating."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT u.external_id, r.book_id, r.rating, r.rated_at FROM ratings r "
                "JOIN readers u USING (reader_id)"
            )
        ).all()
    return {(user, book): (rating, at) for user, book, rating, at in rows}


def file_ratings(path: Path) -> dict[tuple[int, int], tuple[int, int | None]]:
    """What a ratings file says, a pair's last row winning."""
    with path.open() as handle:
        rows = list(csv.reader(handle))[1:]
    return {
        (int(row[0]), int(row[1])): (int(row[2]), int(row[3]) if len(row) > 3 else None)
        for row in rows
    }


@pytest.mark.parametrize("layout", ["timed", "untimed", "too wide to pack", "no json_each"])
def test_every_upsert_path_stores_the_file_and_counts_changes(
    engine: Engine, small_dataset: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite packs a block's rows into one JSON array when their columns fit 63 bits (with
    or without timestamps) and it has `json_each`, else upserts row by row; PostgreSQL copies.
    Each stores what the file says and keeps the upsert's counts: an unchanged re-import
    writes nothing, a changed value writes one row, a pair listed twice keeps its last row."""
    if layout == "no json_each":  # an SQLite built without its JSON functions
        monkeypatch.setattr(bulk, "_has_json_each", lambda cursor: False)
    path = small_dataset / "ratings.csv"
    with path.open() as handle:
        rows = list(csv.reader(handle))
    if layout == "untimed":
        rows = [row[:3] for row in rows]
    elif layout == "too wide to pack":  # a range of 2^62 seconds needs 63 bits alone
        rows[1][3], rows[2][3] = "0", str(2**62)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)

    import_directory(engine, small_dataset)
    assert stored_ratings(engine) == file_ratings(path)
    assert import_directory(engine, small_dataset).written["ratings"] == 0

    rows[1][2] = str(6 - int(rows[1][2]) if rows[1][2] != "3" else 4)
    rows.append(rows[2])  # listed twice, the same values
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    assert import_directory(engine, small_dataset).written["ratings"] == 1
    assert stored_ratings(engine) == file_ratings(path)

    # listed twice: a different row first, then the row as stored; the last row wins
    rows.insert(1, [rows[3][0], rows[3][1], "1" if rows[3][2] != "1" else "5", *rows[3][3:]])
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    import_directory(engine, small_dataset)
    assert stored_ratings(engine) == file_ratings(path)
