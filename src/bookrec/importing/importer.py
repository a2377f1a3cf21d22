"""Import a goodbooks-layout directory: transactional, idempotent, streamed.

Everything happens in one database transaction: the first bad value raises ImportFailed
(file, line, column, value) and the transaction rolls back, so nothing of that import is kept.
Re-importing the same data updates nothing, because every write skips unchanged rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, select

from bookrec.catalog import repository as catalog
from bookrec.datasets.models import Dataset
from bookrec.db.base import table_of
from bookrec.db.session import bulk_unit_of_work
from bookrec.errors import ImportFailed
from bookrec.importing.bulk import RATINGS_TABLE, SHELF_TABLE, BigTable, ReaderMap, make_writer
from bookrec.importing.csvfiles import (
    BOOK_COLUMNS,
    BOOK_TAG_COLUMNS,
    TAG_COLUMNS,
    IdSet,
    iter_blocks,
    open_block_file,
    read_rows,
    series_of,
    split_authors,
)
from bookrec.observability.metrics import IMPORT_ROWS

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances (bytes for big files)."""


@dataclass
class ImportReport:
    dataset_id: int
    name: str
    synthetic: bool
    files: dict[str, int] = field(default_factory=dict)  # rows read per file
    written: dict[str, int] = field(default_factory=dict)  # rows inserted or changed per table
    readers_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_directory(
    engine: Engine,
    directory: Path,
    *,
    name: str | None = None,
    synthetic: bool = False,
    notes: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import books, tags, book_tags, ratings and to_read from `directory` in one transaction."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ImportFailed(str(directory), None, None, None, "not a directory")
    if not (directory / "books.csv").is_file() and not (directory / "ratings.csv").is_file():
        raise ImportFailed(
            str(directory), None, None, None, "holds neither books.csv nor ratings.csv"
        )
    name = name or directory.resolve().name
    with bulk_unit_of_work(engine) as connection:
        dataset_id = _record_dataset(connection, name, str(directory.resolve()), synthetic, notes)
        report = ImportReport(dataset_id=dataset_id, name=name, synthetic=synthetic)
        _import_catalog(connection, directory, report, progress)
        readers = ReaderMap(connection, dataset_id)
        for file_name, target in (("ratings.csv", RATINGS_TABLE), ("to_read.csv", SHELF_TABLE)):
            if (directory / file_name).is_file():
                _import_big_file(
                    connection, directory / file_name, target, readers, report, progress
                )
        report.readers_created = readers.created
        connection.execute(
            table_of(Dataset)
            .update()
            .where(Dataset.dataset_id == dataset_id)
            .values(counts=report.files)
        )
    for table, rows in report.written.items():  # after the commit: rows that now exist
        IMPORT_ROWS.labels(table).inc(rows)
    return report


def _record_dataset(
    connection: Connection, name: str, source: str, synthetic: bool, notes: str | None
) -> int:
    """The dataset row of this import: one per name, so a re-import reuses it."""
    existing = connection.execute(
        select(Dataset.dataset_id).where(Dataset.name == name)
    ).scalar_one_or_none()
    if existing is not None:
        connection.execute(
            table_of(Dataset)
            .update()
            .where(Dataset.dataset_id == existing)
            .values(source=source, synthetic=synthetic, notes=notes)
        )
        return int(existing)
    return int(
        connection.execute(
            table_of(Dataset)
            .insert()
            .values(name=name, source=source, synthetic=synthetic, notes=notes, counts={})
            .returning(Dataset.dataset_id)
        ).scalar_one()
    )


def _import_catalog(
    connection: Connection, directory: Path, report: ImportReport, progress: Progress | None
) -> None:
    books_path = directory / "books.csv"
    if books_path.is_file():
        books, authors_by_book, lines = _read_books(books_path)
        _check_goodreads_ids(connection, books, lines)
        report.files["books.csv"] = len(books)
        report.written["books"] = catalog.upsert_books(connection, books)
        report.written["book_authors"] = catalog.sync_book_authors(connection, authors_by_book)
        if progress:
            progress("books.csv", 1, 1)
    tags_path = directory / "tags.csv"
    if tags_path.is_file():
        tags = [
            {"tag_id": r["tag_id"], "name": r["tag_name"]}
            for _, r in _unique_rows(tags_path, TAG_COLUMNS, ("tag_id",))
        ]
        report.files["tags.csv"] = len(tags)
        report.written["tags"] = catalog.upsert_tags(connection, tags)
    book_tags_path = directory / "book_tags.csv"
    if book_tags_path.is_file():
        rows = _read_book_tags(connection, book_tags_path)
        report.files["book_tags.csv"] = len(rows)
        report.written["book_tags"] = catalog.sync_book_tags(connection, rows)
    if tags_path.is_file() or book_tags_path.is_file():
        catalog.refresh_tag_names(connection)


def _unique_rows(
    path: Path, columns: Any, keys: tuple[str, ...]
) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a small file; a key seen twice is an error naming both lines."""
    seen: dict[tuple[Any, ...], int] = {}
    rows = []
    for line, row in read_rows(path, columns):
        key = tuple(row[k] for k in keys)
        if key in seen:
            raise ImportFailed(path.name, line, keys[-1], key[-1], f"duplicate of line {seen[key]}")
        seen[key] = line
        rows.append((line, row))
    return rows


def _check_goodreads_ids(
    connection: Connection, books: list[dict[str, Any]], lines: dict[int, int]
) -> None:
    """A goodreads id may belong to one book only, across this file and the catalog."""
    owners = catalog.goodreads_to_book_ids(connection)
    incoming = {row["book_id"]: row.get("goodreads_book_id") for row in books}
    for row in books:
        goodreads_id = row.get("goodreads_book_id")
        owner = owners.get(goodreads_id) if goodreads_id is not None else None
        # a clash unless the other book gives this goodreads id up in the same file
        if (
            owner is not None
            and owner != row["book_id"]
            and incoming.get(owner, goodreads_id) == goodreads_id
        ):
            raise ImportFailed(
                "books.csv",
                lines[row["book_id"]],
                "goodreads_book_id",
                row["goodreads_book_id"],
                f"already belongs to book {owner} in the catalog",
            )


def _read_books(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[int, list[str]], dict[int, int]]:
    books = []
    authors_by_book = {}
    book_lines: dict[int, int] = {}
    goodreads_lines: dict[int, int] = {}
    for line, row in _unique_rows(path, BOOK_COLUMNS, ("book_id",)):
        goodreads_id = row.get("goodreads_book_id")
        if goodreads_id is not None:
            if goodreads_id in goodreads_lines:
                raise ImportFailed(
                    path.name,
                    line,
                    "goodreads_book_id",
                    goodreads_id,
                    f"duplicate of line {goodreads_lines[goodreads_id]}",
                )
            goodreads_lines[goodreads_id] = line
        row["authors"] = row.get("authors") or ""
        row["series"] = series_of(row["title"])
        authors_by_book[row["book_id"]] = split_authors(row["authors"])
        book_lines[row["book_id"]] = line
        books.append(row)
    # every row needs every column, in one order, for the multi-row INSERT
    names = sorted({k for row in books for k in row})
    return [{k: row.get(k) for k in names} for row in books], authors_by_book, book_lines


def _read_book_tags(connection: Connection, path: Path) -> list[dict[str, Any]]:
    goodreads = catalog.goodreads_to_book_ids(connection)
    tag_ids = catalog.known_tag_ids(connection)
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for line, row in read_rows(path, BOOK_TAG_COLUMNS):
        book_id = goodreads.get(row["goodreads_book_id"])
        if book_id is None:
            raise ImportFailed(
                path.name,
                line,
                "goodreads_book_id",
                row["goodreads_book_id"],
                "no book in the catalog has this goodreads_book_id",
            )
        if row["tag_id"] not in tag_ids:
            raise ImportFailed(path.name, line, "tag_id", row["tag_id"], "no such tag")
        # goodbooks repeats some (book, tag) pairs; their counts add up
        key = (book_id, row["tag_id"])
        if key in rows:
            rows[key]["count"] += max(row["count"], 0)
        else:
            rows[key] = {"book_id": book_id, "tag_id": row["tag_id"], "count": max(row["count"], 0)}
    return list(rows.values())


T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run `items` in a helper thread, `depth` ahead of the consumer.

    Parsing a block (pyarrow and numpy, which release the GIL) then overlaps with writing the
    previous one. An exception in the producer is raised in the consumer; a consumer that
    stops early stops the producer.
    """
    done = object()
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            buffer.put(error)

    worker = threading.Thread(target=produce, name="import-prefetch", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _import_big_file(
    connection: Connection,
    path: Path,
    target: BigTable,
    readers: ReaderMap,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    source = open_block_file(path, target.spec)
    known_books = IdSet(catalog.known_book_ids(connection))
    writer = make_writer(connection, target, source, readers)
    done = len(source.header_bytes)
    try:
        for block in prefetch(iter_blocks(source, target.spec, known_books)):
            writer.write(block)
            done += len(block.raw)
            if progress:
                progress(path.name, min(done, source.data_end), source.data_end)
    except BaseException as error:
        writer.abort(error)
        raise
    writer.finish()
    report.files[path.name] = writer.rows
    report.written[target.name] = writer.written
