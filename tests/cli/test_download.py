"""`bookrec data download goodbooks-10k` against a local HTTP server: good files, a corrupt
one, a connection dropped mid-file (then resumed with a Range request)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.fixtures.cli import invoke

from bookrec.catalog.models import Book
from bookrec.datasets import download
from bookrec.readers.models import Rating

DEMO = Path(__file__).resolve().parents[2] / "src" / "bookrec" / "demo" / "goodbooks-10k"
SMALL_FILES = {
    "ratings.csv": b"user_id,book_id,rating\n1,1,5\n2,1,4\n2,3,2\n",
    "to_read.csv": b"user_id,book_id\n1,2\n",
    "book_tags.csv": b"goodreads_book_id,tag_id,count\n2767052,30574,10\n",
}


class Mirror(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    drop_after: dict[str, int] = {}
    ranges: list[str] = []

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if "Range" in self.headers:
            self.ranges.append(f"{name} {self.headers['Range']}")
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = self.drop_after.pop(name, None)
        self.wfile.write(body[start:cut] if cut is not None else body[start:])
        if cut is not None:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Mirror]]:
    """Real tags.csv and books.csv (the pinned ids), small stand-ins for the other three
    files, pinned in the test by their own git blob ids."""
    files = {name: (DEMO / name).read_bytes() for name in ("tags.csv", "books.csv")}
    files.update(SMALL_FILES)
    pins = dict(download.GOODBOOKS_FILES)
    for name, body in SMALL_FILES.items():
        pins[name] = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
    monkeypatch.setattr(download, "GOODBOOKS_FILES", pins)
    handler = type("TestMirror", (Mirror,), {"files": files, "drop_after": {}, "ranges": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/goodbooks/"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def plain_env(tmp_path: Path) -> dict[str, str]:
    return {"BOOKREC_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "200"}


def test_pinned_ids_are_those_of_the_bundled_files() -> None:
    """The demo's books.csv and tags.csv are goodbooks' own, byte for byte."""
    for name in ("books.csv", "tags.csv"):
        assert download.git_blob_id(DEMO / name) == download.GOODBOOKS_FILES[name]


def test_good_files_are_verified_moved_into_place_and_imported(
    mirror: type[Mirror], env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "goodbooks"
    code, output = invoke(
        env, "data", "download", "goodbooks-10k", "--out", str(out),
        "--base-url", mirror.url, "--import",  # type: ignore[attr-defined]
    )  # fmt: skip
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == sorted(download.GOODBOOKS_FILES)
    assert (out / "books.csv").read_bytes() == (DEMO / "books.csv").read_bytes()
    assert "verified" in output
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Book)) == 10_000
        assert connection.scalar(select(func.count()).select_from(Rating)) == 3
    again, output = invoke(
        env, "data", "download", "goodbooks-10k", "--out", str(out),
        "--base-url", mirror.url,  # type: ignore[attr-defined]
    )  # fmt: skip
    assert again == 0 and "already there, verified" in output


def test_wrong_bytes_exit_1_naming_the_file_and_leave_no_csv(
    mirror: type[Mirror], tmp_path: Path
) -> None:
    mirror.files["tags.csv"] = mirror.files["tags.csv"].replace(b"to-read", b"to-reed", 1)
    out = tmp_path / "goodbooks"
    code, output = invoke(
        plain_env(tmp_path), "data", "download", "goodbooks-10k", "--out", str(out),
        "--base-url", mirror.url,  # type: ignore[attr-defined]
    )  # fmt: skip
    assert code == 1
    assert "tags.csv" in output and "checksum" in output
    assert list(out.iterdir()) == []


def test_a_dropped_connection_is_resumed_with_a_range_request(
    mirror: type[Mirror], tmp_path: Path
) -> None:
    mirror.drop_after["books.csv"] = 1_000_000
    out = tmp_path / "goodbooks"
    args = ("data", "download", "goodbooks-10k", "--out", str(out), "--base-url", mirror.url)  # type: ignore[attr-defined]
    code, output = invoke(plain_env(tmp_path), *args)
    assert code == 1
    assert "books.csv" in output and ("truncated" in output or "dropped" in output)
    assert sorted(p.name for p in out.glob("*.csv")) == ["tags.csv"]  # verified before it
    assert (out / ".books.csv.part").stat().st_size == 1_000_000
    code, output = invoke(plain_env(tmp_path), *args)
    assert code == 0, output
    assert mirror.ranges == ["books.csv bytes=1000000-"]
    assert "resumed at 1,000,000" in output
    assert (out / "books.csv").read_bytes() == (DEMO / "books.csv").read_bytes()
    assert not list(out.glob(".*.part"))


def test_unknown_data_set_and_bad_url_are_refused(tmp_path: Path) -> None:
    code, output = invoke(plain_env(tmp_path), "data", "download", "movielens")
    assert code == 1 and "goodbooks-10k" in output
    code, output = invoke(
        plain_env(tmp_path), "data", "download", "goodbooks-10k", "--base-url", "file:///etc/"
    )
    assert code == 1 and "http" in output
