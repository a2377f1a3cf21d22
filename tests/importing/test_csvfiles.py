"""Validation of data files: every error names the file, line, column and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bookrec.errors import ImportFailed
from bookrec.importing.csvfiles import (
    BOOK_COLUMNS,
    RATINGS,
    IdSet,
    iter_blocks,
    open_block_file,
    read_rows,
    series_of,
    split_authors,
)

KNOWN_BOOKS = IdSet(np.arange(1, 101, dtype=np.int64))


def ratings_file(tmp_path: Path, body: str, header: str = "user_id,book_id,rating") -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(header + "\n" + body)
    return path


def read_all(path: Path, block_bytes: int = 1 << 20) -> list[np.ndarray]:
    source = open_block_file(path, RATINGS)
    blocks = list(iter_blocks(source, RATINGS, KNOWN_BOOKS, block_bytes=block_bytes))
    return [np.concatenate([b.columns[c] for b in blocks]) for c in source.present]


@pytest.mark.parametrize(
    ("body", "line", "column", "value", "reason"),
    [
        ("1,2,5\n1,3,7\n", 3, "rating", 7, "must be 1 to 5"),
        ("1,2,5\n1,3,0\n", 3, "rating", 0, "must be 1 to 5"),
        ("1,2,5\n1,3,x\n", 3, "rating", "x", "not an integer"),
        ("1,2,5\n1,3,4.5\n", 3, "rating", "4.5", "not an integer"),
        ("1,2,5\n1,,4\n", 3, "book_id", "", "must not be empty"),
        ("1,2,5\n-4,3,4\n", 3, "user_id", -4, "must be between"),
        ("1,2,5\n1,500,4\n", 3, "book_id", 500, "no such book"),
        ("1,2,5\n\n1,3,4\n", 3, None, None, "empty line"),
        ("1,2,5\n1,3\n", 3, None, None, "has 2 fields"),
    ],
)
def test_bad_value_names_line_column_value(
    tmp_path: Path, body: str, line: int, column: str | None, value: object, reason: str
) -> None:
    with pytest.raises(ImportFailed) as caught:
        read_all(ratings_file(tmp_path, body))
    error = caught.value
    assert (error.file, error.line, error.column, error.value) == (
        "ratings.csv",
        line,
        column,
        value,
    )
    assert reason in error.reason


def test_line_numbers_hold_across_blocks(tmp_path: Path) -> None:
    rows = [f"{u},{b},{1 + (u + b) % 5}" for u in range(1, 200) for b in range(1, 6)]
    bad = 731
    rows[bad - 2] = rows[bad - 2].rsplit(",", 1)[0] + ",9"
    path = ratings_file(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(ImportFailed) as caught:
        read_all(path, block_bytes=64)
    assert caught.value.line == bad


def test_blocks_keep_every_row_and_raw_bytes(tmp_path: Path) -> None:
    rows = [
        f"{u},{b},{1 + (u * b) % 5},{1_500_000_000 + u}" for u in range(1, 50) for b in range(1, 9)
    ]
    path = ratings_file(
        tmp_path, "\r\n".join(rows) + "\r\n\r\n\n", header="user_id,book_id,rating,timestamp"
    )
    source = open_block_file(path, RATINGS)
    blocks = list(iter_blocks(source, RATINGS, KNOWN_BOOKS, block_bytes=100))
    assert len(blocks) > 5
    assert b"".join(b.raw for b in blocks).decode().splitlines() == rows
    users = np.concatenate([b.columns["user_id"] for b in blocks])
    assert len(users) == len(rows)
    assert source.present == ("user_id", "book_id", "rating", "timestamp")


def test_extra_columns_are_ignored_and_order_is_free(tmp_path: Path) -> None:
    path = ratings_file(tmp_path, "x,5,2,1\ny,4,3,2\n", header="note,rating,book_id,user_id")
    users, books, ratings = read_all(path)
    assert users.tolist() == [1, 2] and books.tolist() == [2, 3] and ratings.tolist() == [5, 4]


def test_missing_required_column(tmp_path: Path) -> None:
    with pytest.raises(
        ImportFailed, match=r"ratings.csv, line 1, column 'rating'.*required column"
    ):
        open_block_file(ratings_file(tmp_path, "1,2\n", header="user_id,book_id"), RATINGS)


def test_books_rows_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "books.csv"
    path.write_text(
        "book_id,title,authors,original_publication_year,image_url\n"
        "1,Dune,Frank Herbert,1965.0,https://example.org/a.jpg\n"
        '2,"Book, with comma",,,\n'
        "3,Bad year,Someone,12345,\n"
    )
    rows = []
    with pytest.raises(ImportFailed) as caught:
        rows.extend(read_rows(path, BOOK_COLUMNS))
    assert rows[0][1]["original_publication_year"] == 1965
    assert rows[1][1]["title"] == "Book, with comma" and rows[1][1]["authors"] is None
    assert (caught.value.line, caught.value.column, caught.value.value) == (
        4,
        "original_publication_year",
        "12345",
    )


def test_series_and_authors_parsing() -> None:
    assert series_of("The Hunger Games (The Hunger Games, #1)") == "The Hunger Games"
    assert series_of("Harry Potter Boxed Set, Books 1-5 (Harry Potter, #1-5)") == "Harry Potter"
    assert series_of("To Kill a Mockingbird") is None
    assert split_authors("J.K. Rowling, Mary GrandPré") == ["J.K. Rowling", "Mary GrandPré"]
    assert split_authors("") == []


@pytest.mark.parametrize("ids", [[3, 5, 9], [3, 5, 2**40]])
def test_id_set_dense_and_sparse(ids: list[int]) -> None:
    members = IdSet(np.array(ids))
    probe = np.array([3, 4, 5, 9, -1, 2**40, 2**41])
    assert members.contains(probe).tolist() == [p in ids for p in probe.tolist()]
    assert not IdSet(np.array([], dtype=np.int64)).contains(probe).any()
