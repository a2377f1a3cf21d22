"""Reading and validating goodbooks-layout CSV files.

Small files (books, tags, book_tags) are read row by row with the csv module, so every error
names its exact line. Big files (ratings, to_read) are streamed in blocks of whole lines:
each block is parsed and checked with pyarrow and numpy. Line numbers count the header as
line 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from bookrec.errors import ImportFailed

BLOCK_BYTES = 16 << 20

_SHORT_ISBN10 = re.compile(r"\d{6,8}[\dXx]|\d{5,8}")  # 7 to 9 characters: leading zeros lost
_SERIES_RE = re.compile(r"\(([^()]+?),?\s*#[\d.\-–]+\)\s*$")


def series_of(title: str) -> str | None:
    """The series in a goodreads title: 'Dune (Dune Chronicles, #1)' -> 'Dune Chronicles'."""
    match = _SERIES_RE.search(title)
    return match.group(1).strip() if match else None


def split_authors(authors: str) -> list[str]:
    """goodbooks lists authors comma-separated: 'J.K. Rowling, Mary GrandPré'."""
    return [name.strip() for name in authors.split(",") if name.strip()]


# ---------------------------------------------------------------------------------------------
# small files, row by row


@dataclass(frozen=True)
class Column:
    name: str
    parse: Callable[[str], Any]
    required: bool = False  # the column must exist
    nullable: bool = True  # an empty value is allowed (becomes None)


def _int(text: str) -> int:
    value = float(text) if ("." in text or "e" in text.lower()) else int(text)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        value = int(value)
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def _isbn_text(text: str) -> str:
    if len(text) > 32:
        raise ValueError("longer than 32 characters")
    return text.strip()


def _isbn10(text: str) -> str:
    """An ISBN-10 as text; one that lost its leading zeros to a number column gets them back
    ('439023483' -> '0439023483')."""
    text = _isbn_text(text)
    if _SHORT_ISBN10.fullmatch(text):
        return text.zfill(10)
    return text


def _isbn13(text: str) -> str:
    """An ISBN-13 as text. A spreadsheet's float ('9.78043902348e+12', goodbooks' own form)
    keeps the first 12 digits; the 13th is the check digit, so it is computed back."""
    text = _isbn_text(text)
    if "e" not in text.lower():
        return text
    try:
        digits = str(int(float(text)))
    except (ValueError, OverflowError):
        return text
    if len(digits) != 13:
        return text
    head = digits[:12]
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(head))
    return head + str((10 - weighted % 10) % 10)


def _short_text(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return parse


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) > 2000:
        raise ValueError("not an http(s) URL")
    return text


def _year(text: str) -> int:
    year = _int(text)
    if not -5000 <= year <= 2100:
        raise ValueError("not a plausible publication year")
    return year


BOOK_COLUMNS = [
    Column("book_id", _positive_int, required=True, nullable=False),
    Column("title", _short_text(2000), required=True, nullable=False),
    Column("authors", _short_text(4000), required=True),
    Column("goodreads_book_id", _positive_int),
    Column("best_book_id", _positive_int),
    Column("work_id", _positive_int),
    Column("books_count", _non_negative_int),
    Column("isbn", _isbn10),
    Column("isbn13", _isbn13),
    Column("original_publication_year", _year),
    Column("original_title", _short_text(2000)),
    Column("language_code", _short_text(16)),
    Column("average_rating", _float),
    Column("ratings_count", _non_negative_int),
    Column("work_ratings_count", _non_negative_int),
    Column("work_text_reviews_count", _non_negative_int),
    *(Column(f"ratings_{star}", _non_negative_int) for star in range(1, 6)),
    Column("image_url", _url),
    Column("small_image_url", _url),
]
TAG_COLUMNS = [
    Column("tag_id", _non_negative_int, required=True, nullable=False),
    Column("tag_name", _short_text(512), required=True, nullable=False),
]
BOOK_TAG_COLUMNS = [
    Column("goodreads_book_id", _positive_int, required=True, nullable=False),
    Column("tag_id", _non_negative_int, required=True, nullable=False),
    Column("count", _int, required=True, nullable=False),
]


def read_rows(path: Path, columns: list[Column]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, parsed row) for each row; raise ImportFailed on the first bad value."""
    name = path.name
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFailed(name, 1, None, None, "the file is empty (no header)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportFailed(name, 1, None, None, f"unreadable header: {exc}") from None
        header = [h.strip() for h in header]
        _check_header(name, header, [c.name for c in columns if c.required])
        positions = {c.name: header.index(c.name) for c in columns if c.name in header}
        wanted = [c for c in columns if c.name in positions]
        try:
            for values in reader:
                line = reader.line_num
                if not values:
                    continue
                if len(values) != len(header):
                    raise ImportFailed(
                        name,
                        line,
                        None,
                        None,
                        f"has {len(values)} fields, the header has {len(header)}",
                    )
                row: dict[str, Any] = {}
                for column in wanted:
                    text = values[positions[column.name]].strip()
                    if "\x00" in text:  # PostgreSQL cannot store it in text; never a real value
                        raise ImportFailed(name, line, column.name, text, "contains a NUL byte")
                    if text == "":
                        if not column.nullable:
                            raise ImportFailed(name, line, column.name, text, "must not be empty")
                        row[column.name] = None
                        continue
                    try:
                        row[column.name] = column.parse(text)
                    except ValueError as exc:
                        reason = str(exc) if "could not convert" not in str(exc) else "not a number"
                        if reason.startswith("invalid literal"):
                            reason = "not an integer"
                        raise ImportFailed(name, line, column.name, text, reason) from None
                yield line, row
        except csv.Error as exc:
            raise ImportFailed(name, reader.line_num, None, None, f"malformed CSV: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ImportFailed(name, None, None, None, f"not UTF-8 text: {exc}") from None


def _check_header(name: str, header: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportFailed(
            name,
            1,
            missing[0],
            None,
            f"required column missing (the header has: {', '.join(header)})",
        )
    duplicated = {h for h in header if header.count(h) > 1}
    if duplicated:
        raise ImportFailed(name, 1, sorted(duplicated)[0], None, "column appears twice")


# ---------------------------------------------------------------------------------------------
# big files, in blocks


@dataclass(frozen=True)
class BlockSpec:
    """Integer columns of a big file: which are required, and the range each value must be in."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    ranges: dict[str, tuple[int, int]]


RATINGS = BlockSpec(
    required=("user_id", "book_id", "rating"),
    optional=("timestamp",),
    ranges={
        "user_id": (1, 2**62),
        "book_id": (1, 2**31 - 1),
        "rating": (1, 5),
        "timestamp": (0, 2**62),
    },
)
TO_READ = BlockSpec(
    required=("user_id", "book_id"),
    optional=("timestamp",),
    ranges={"user_id": (1, 2**62), "book_id": (1, 2**31 - 1), "timestamp": (0, 2**62)},
)


DENSE_LIMIT = 1 << 24  # ids below this are looked up in a flat array instead of by search


class IdSet:
    """Fast membership of integer ids: a flat boolean table for small ids, else binary search."""

    def __init__(self, ids: np.ndarray) -> None:
        self._sorted = np.unique(np.asarray(ids, dtype=np.int64))
        self._table: np.ndarray | None = None
        if len(self._sorted) and self._sorted[0] >= 0 and self._sorted[-1] < DENSE_LIMIT:
            self._table = np.zeros(int(self._sorted[-1]) + 1, dtype=bool)
            self._table[self._sorted] = True

    def contains(self, values: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.zeros(len(values), dtype=bool)
        if self._table is not None:
            inside = (values >= 0) & (values < len(self._table))
            found = np.zeros(len(values), dtype=bool)
            found[inside] = self._table[values[inside]]
            return found
        position = np.minimum(np.searchsorted(self._sorted, values), len(self._sorted) - 1)
        return np.asarray(self._sorted[position] == values)


@dataclass
class Block:
    """Whole lines of a big file: their raw bytes and the parsed, validated columns."""

    first_line: int  # line number of the block's first row
    raw: bytes  # the block's lines exactly as in the file (no header), for error location
    columns: dict[str, np.ndarray]  # int64 arrays: the spec's columns present in the file

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


@dataclass(frozen=True)
class BlockFile:
    path: Path
    header: list[str]
    header_bytes: bytes
    present: tuple[str, ...]  # the spec's columns that the file has, in spec order
    data_end: int  # offset just past the last non-blank byte: trailing blank lines are ignored


def open_block_file(path: Path, spec: BlockSpec) -> BlockFile:
    """Read and check the header of a big file."""
    with path.open("rb") as handle:
        header_bytes = handle.readline()
    try:
        header_text = header_bytes.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ImportFailed(path.name, 1, None, None, "the header is not UTF-8 text") from None
    if not header_text:
        raise ImportFailed(path.name, 1, None, None, "the file is empty (no header)")
    try:
        header = [h.strip().strip('"') for h in next(csv.reader([header_text]))]
    except csv.Error as exc:  # a carriage return or NUL inside the header line
        raise ImportFailed(path.name, 1, None, None, f"unreadable header: {exc}") from None
    _check_header(path.name, header, list(spec.required))
    present = tuple(c for c in (*spec.required, *spec.optional) if c in header)
    return BlockFile(path, header, header_bytes, present, _data_end(path))


def _data_end(path: Path) -> int:
    with path.open("rb") as handle:
        end = handle.seek(0, io.SEEK_END)
        while end > 0:
            start = max(0, end - 4096)
            handle.seek(start)
            tail = handle.read(end - start).rstrip(b" \t\r\n")
            if tail:
                return start + len(tail)
            end = start
    return 0


def iter_blocks(
    source: BlockFile, spec: BlockSpec, known_books: IdSet, block_bytes: int = BLOCK_BYTES
) -> Iterator[Block]:
    """Yield validated blocks of whole lines; raise ImportFailed at the first bad value.

    `known_books` holds the book ids a row may refer to.
    """
    name = source.path.name
    line = 2
    with source.path.open("rb") as handle:
        handle.readline()
        carry = b""
        while True:
            chunk = handle.read(max(0, min(block_bytes, source.data_end - handle.tell())))
            data = carry + chunk
            if not chunk:
                if data.strip():
                    if not data.endswith(b"\n"):
                        data += b"\n"
                    yield _parse_block(source, spec, name, line, data, known_books)
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            block = _parse_block(source, spec, name, line, data[:cut], known_books)
            line += data.count(b"\n", 0, cut)
            yield block


def _parse_block(
    source: BlockFile,
    spec: BlockSpec,
    name: str,
    first_line: int,
    raw: bytes,
    known_books: IdSet,
) -> Block:
    convert = pacsv.ConvertOptions(
        column_types={c: pa.int64() for c in source.present},
        include_columns=list(source.present),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    read = pacsv.ReadOptions(column_names=source.header, use_threads=False)
    try:
        table = pacsv.read_csv(io.BytesIO(raw), read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        _locate_parse_error(source, spec, name, first_line, raw)
        raise  # _locate_parse_error always raises; this keeps type checkers honest
    if table.num_rows != raw.count(b"\n"):
        _reject_blank_lines(name, first_line, raw)  # pyarrow skipped an empty line: find it
    columns: dict[str, np.ndarray] = {}
    for column in source.present:
        chunked = table.column(column)
        if chunked.null_count:
            row = int(np.flatnonzero(chunked.is_null().to_numpy(zero_copy_only=False))[0])
            raise ImportFailed(name, first_line + row, column, "", "must not be empty")
        values = chunked.to_numpy()
        low, high = spec.ranges[column]
        bad = (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            reason = "must be 1 to 5" if column == "rating" else f"must be between {low} and {high}"
            raise ImportFailed(name, first_line + row, column, int(values[row]), reason)
        columns[column] = values
    book_ids = columns["book_id"]
    unknown = ~known_books.contains(book_ids)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ImportFailed(
            name, first_line + row, "book_id", int(book_ids[row]), "no such book in the catalog"
        )
    return Block(first_line, raw, columns)


def _reject_blank_lines(name: str, first_line: int, raw: bytes) -> None:
    blank = re.search(rb"(?m)^[ \t\r]*\n", raw)
    if blank:
        line = first_line + raw.count(b"\n", 0, blank.start())
        raise ImportFailed(name, line, None, None, "empty line")
    raise ImportFailed(
        name,
        first_line,
        None,
        None,
        "a quoted value spans several lines near here; this file needs one row per line",
    )


def _locate_parse_error(
    source: BlockFile, spec: BlockSpec, name: str, first_line: int, raw: bytes
) -> None:
    """pyarrow says only that a block is bad; find the exact line, column and value."""
    positions = {c: source.header.index(c) for c in source.present}
    text = raw.decode("utf-8", errors="replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    offset = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # a stray carriage return, a NUL, an unterminated quote
            raise ImportFailed(
                name, first_line + offset, None, None, f"malformed CSV: {exc}"
            ) from None
        line = first_line + offset
        offset += 1
        if len(values) != len(source.header):
            raise ImportFailed(
                name,
                line,
                None,
                None,
                f"has {len(values)} fields, the header has {len(source.header)}",
            )
        for column, index in positions.items():
            value = values[index].strip()
            if value == "":
                raise ImportFailed(name, line, column, value, "must not be empty")
            try:
                int(value)
            except ValueError:
                raise ImportFailed(name, line, column, value, "not an integer") from None
    raise ImportFailed(name, None, None, None, "malformed CSV")
