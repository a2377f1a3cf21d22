"""A reader's Goodreads library export (CSV) becomes their ratings and to-read shelf.

Goodreads' "Export Library" CSV has one row per book with, among others, `Book Id`,
`Title`, `Author`, `ISBN`, `ISBN13` (written as `="0439023483"` so spreadsheets keep the
zeros), `My Rating` (0 = not rated) and `Exclusive Shelf` (read, currently-reading, to-read).
A row is matched to a catalogue book by Goodreads id, else by ISBN-10 or ISBN-13, else by
normalised title and author. Ratings 1-5 become ratings; an unrated to-read book goes on
the shelf; other unrated rows are skipped. The whole file is one unit of work.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookrec.catalog.models import Book
from bookrec.errors import InvalidInput
from bookrec.readers import service as readers

MAX_BYTES = 5 * 1024 * 1024  # a 10,000-book library exports to about 3 MB
MAX_ROWS = 20_000
UNMATCHED_SHOWN = 10
REQUIRED = ("Book Id", "Title", "Author", "My Rating", "Exclusive Shelf")
WHAT_IT_IS = (
    "a Goodreads library export is the CSV from goodreads.com → My Books → Import and export "
    "→ Export Library; its header starts `Book Id,Title,Author,Author l-f,Additional "
    "Authors,ISBN,ISBN13,My Rating,...` and includes `Exclusive Shelf`"
)


@dataclass
class GoodreadsReport:
    """What an import did: rows matched to books (rated or shelved), unmatched, skipped."""

    rows: int = 0
    matched: int = 0
    ratings: int = 0
    shelved: int = 0
    skipped: int = 0
    unmatched: int = 0
    unmatched_titles: list[str] = field(default_factory=list)


def _text(value: str | None) -> str:
    """A cell without Goodreads' `="..."` spreadsheet quoting and surrounding blanks."""
    value = (value or "").strip()
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.strip()


def normalise(text: str) -> str:
    """Title or name for matching: no accents, case, series in brackets or punctuation."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"\([^)]*\)\s*$", "", text)  # "(The Hunger Games, #1)"
    return " ".join(re.findall(r"\w+", text))


def _isbn(value: str | None) -> str | None:
    digits = re.sub(r"[^0-9Xx]", "", _text(value)).upper()
    return digits or None


class _Catalogue:
    """Look-ups of the live catalogue by Goodreads id, ISBN and normalised title + author."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            select(
                Book.book_id,
                Book.goodreads_book_id,
                Book.isbn,
                Book.isbn13,
                Book.title,
                Book.authors,
            ).where(Book.deleted_at.is_(None))
        ).all()
        self.goodreads: dict[int, int] = {
            int(r.goodreads_book_id): r.book_id for r in rows if r.goodreads_book_id
        }
        self.isbn: dict[str, int] = {r.isbn.upper(): r.book_id for r in rows if r.isbn}
        self.isbn.update({r.isbn13: r.book_id for r in rows if r.isbn13})
        self.titles: dict[tuple[str, str], int] = {}
        for r in rows:
            for author in (r.authors or "").split(","):
                self.titles.setdefault((normalise(r.title), normalise(author)), r.book_id)

    def match(self, row: dict[str, str]) -> int | None:
        goodreads_id = _text(row.get("Book Id"))
        if goodreads_id.isdigit() and int(goodreads_id) in self.goodreads:
            return self.goodreads[int(goodreads_id)]
        for column in ("ISBN", "ISBN13"):
            isbn = _isbn(row.get(column))
            if isbn and isbn in self.isbn:
                return self.isbn[isbn]
        key = (normalise(_text(row.get("Title"))), normalise(_text(row.get("Author"))))
        return self.titles.get(key)


def _rows(content: bytes) -> list[dict[str, str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"file: not UTF-8 text; {WHAT_IT_IS}", field="file") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(
            f"file: not a Goodreads library export (no column {', '.join(missing)}); {WHAT_IT_IS}",
            field="file",
        )
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise InvalidInput(f"file: more than {MAX_ROWS} books", field="file")
    except csv.Error as exc:
        raise InvalidInput(
            f"file, line {reader.line_num}: not valid CSV ({exc})", field="file"
        ) from None
    return rows


def import_library(session: Session, reader_id: int, content: bytes) -> GoodreadsReport:
    """Rate and shelve the reader's matched books; raises (and writes nothing) on a bad file."""
    rows = _rows(content)
    catalogue = _Catalogue(session)
    report = GoodreadsReport(rows=len(rows))
    for line, row in enumerate(rows, start=2):
        stars_text = _text(row.get("My Rating")) or "0"
        if not stars_text.isdigit() or int(stars_text) > 5:
            raise InvalidInput(
                f"file, line {line}, column 'My Rating': {stars_text!r}: must be 0 to 5",
                field="file",
            )
        stars = int(stars_text)
        shelf = _text(row.get("Exclusive Shelf")).casefold()
        if stars == 0 and shelf != "to-read":
            report.skipped += 1
            continue
        book_id = catalogue.match(row)
        if book_id is None:
            report.unmatched += 1
            if len(report.unmatched_titles) < UNMATCHED_SHOWN:
                report.unmatched_titles.append(_text(row.get("Title")))
            continue
        report.matched += 1
        if stars:
            readers.rate_book(session, reader_id, book_id, stars)
            report.ratings += 1
        else:
            readers.shelve_book(session, reader_id, book_id)
            report.shelved += 1
    return report
