"""Property-based tests of the CSV importer (issue 22): whatever the bytes — arbitrary ones,
huge fields, wrong encodings, BOMs, CRLF, stray quotes, NULs — an import either succeeds or
fails with `ImportFailed` naming the file (and the line and column when there is one), never
with another exception, and a failed import leaves the database as it was.

Examples are few per run (`max_examples`) to keep `make test` fast; Hypothesis's database
(.hypothesis/) replays any failure it found first on the next run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bookrec.catalog.models import Book
from bookrec.datasets.models import Dataset
from bookrec.errors import ImportFailed
from bookrec.importing.importer import import_directory
from bookrec.readers.models import Rating, Reader, ShelfItem

FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BOOKS_HEADER = "book_id,goodreads_book_id,title,authors,original_publication_year,language_code"
VALID_BOOKS = BOOKS_HEADER + "\n1,11,Dune,Frank Herbert,1965,eng\n2,12,Emma,Jane Austen,1815,en\n"

#: Pieces a field may be made of: fine values and every kind of trouble.
FIELDS = st.one_of(
    st.integers(min_value=-5, max_value=6).map(str),
    st.integers(min_value=2**31, max_value=2**80).map(str),
    st.sampled_from(["", " ", "1.5", "1e3", "NaN", "-0", "0x1F", "٣", "１"]),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from('",\r\n\x00\ufeff\\'), max_size=6),
    st.integers(min_value=5_000, max_value=200_000).map(lambda n: "x" * n),  # a huge field
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_bytes(draw: st.DrawFn, header: str, width: int) -> bytes:
    """A CSV body of fields from FIELDS under `header`, in some encoding and line ending."""
    end = draw(LINE_ENDS)
    rows = draw(st.lists(st.lists(FIELDS, min_size=width - 1, max_size=width + 1), max_size=6))
    text = end.join([header, *(",".join(row) for row in rows)]) + draw(st.sampled_from(["", end]))
    encoding = draw(ENCODINGS)
    return text.encode(encoding, errors="replace")


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Book, Rating, ShelfItem, Reader, Dataset)
        }


def check_import(engine: Engine, directory: Path) -> None:
    """The property: success, or ImportFailed naming the file and nothing changed."""
    before = counts(engine)
    failure: ImportFailed | None = None
    try:
        import_directory(engine, directory, name="property")
    except ImportFailed as exc:
        failure = exc
    if failure is None:
        return
    assert failure.file, failure
    assert str(failure).startswith(failure.file), failure
    assert failure.line is None or failure.line >= 1, failure
    assert counts(engine) == before, f"a failed import changed the database: {failure}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "files"


def fresh(workdir: Path) -> Path:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir


@FAST
@given(body=st.binary(max_size=3000))
def test_ratings_of_arbitrary_bytes(engine: Engine, workdir: Path, body: bytes) -> None:
    directory = fresh(workdir)
    (directory / "books.csv").write_text(VALID_BOOKS)
    (directory / "ratings.csv").write_bytes(b"user_id,book_id,rating\n" + body)
    check_import(engine, directory)


@FAST
@given(content=csv_bytes("user_id,book_id,rating", 3))
# a huge bad field: PostgreSQL drops a connection whose COPY is ended with a message over 10 kB
@example(content=b"user_id,book_id,rating\n0,0," + b"x" * 20_000 + b"\n")
def test_ratings_with_troublesome_fields(engine: Engine, workdir: Path, content: bytes) -> None:
    directory = fresh(workdir)
    (directory / "books.csv").write_text(VALID_BOOKS)
    (directory / "ratings.csv").write_bytes(content)
    check_import(engine, directory)


@FAST
@given(content=csv_bytes(BOOKS_HEADER, 6), prefix=st.sampled_from([b"", b"\xef\xbb\xbf"]))
def test_books_with_troublesome_fields(
    engine: Engine, workdir: Path, content: bytes, prefix: bytes
) -> None:
    directory = fresh(workdir)
    (directory / "books.csv").write_bytes(prefix + content)
    check_import(engine, directory)


@FAST
@given(body=st.binary(max_size=3000))
def test_to_read_of_arbitrary_bytes(engine: Engine, workdir: Path, body: bytes) -> None:
    directory = fresh(workdir)
    (directory / "books.csv").write_text(VALID_BOOKS)
    (directory / "to_read.csv").write_bytes(b"user_id,book_id\n" + body)
    check_import(engine, directory)
