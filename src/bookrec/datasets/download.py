"""Fetch goodbooks-10k's real files, each checked against the id git gives its bytes.

The files come from the data set's public repository (zygmuntz/goodbooks-10k on GitHub) at
a pinned commit, or from a mirror serving the same paths. Each is pinned by its git blob id
(SHA-1 of `"blob <size>\\0"` followed by the bytes, what `git hash-object` prints and git
itself checks). A file is streamed into `.<name>.part` beside its destination; a dropped
connection leaves the part for the next run to resume with an HTTP Range request; a
complete part is verified and only then renamed to `<name>`. A part whose bytes do not
match is deleted, so a failed download never leaves a CSV behind.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path

from bookrec.errors import BookrecError

GOODBOOKS_COMMIT = "6dd165b555a7b47b2dd36743a425776e641ff50c"
GOODBOOKS_URL = f"https://raw.githubusercontent.com/zygmuntz/goodbooks-10k/{GOODBOOKS_COMMIT}/"
# git blob ids at that commit, smallest download first
GOODBOOKS_FILES = {
    "tags.csv": "65b5424eeec23554e9b034933e438cd12017a985",
    "books.csv": "d694afdf5f555b51c1128c6ff562b6e54a7f75e3",
    "to_read.csv": "bd19bb1ed6b9fb20f15c42e0af23e413aeaf1c04",
    "book_tags.csv": "f82218f199850f533568eaf22529b5df1c545412",
    "ratings.csv": "0d245a10acfe3c89b2e4004cdbc805b99771ac5d",
}
CHUNK = 1 << 16
TIMEOUT_SECONDS = 60

Progress = Callable[[str, int, int], None]


class DownloadFailed(BookrecError):
    status = 502
    title = "Download failed"
    type_slug = "download-failed"


def git_blob_id(path: Path) -> str:
    """The id git gives a file's bytes (`git hash-object`)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Fetched:
    name: str
    path: Path
    downloaded_bytes: int  # 0 when the file was there and verified already
    resumed_from: int


def _open(url: str, start: int) -> tuple[HTTPResponse, int, int]:
    """The response, the offset it starts at and the whole file's size (-1 if unknown)."""
    # http(s) only: download_goodbooks checks the base URL's scheme
    request = urllib.request.Request(url, headers={"User-Agent": "bookrec-data-download"})  # noqa: S310
    if start:
        request.add_header("Range", f"bytes={start}-")
    response: HTTPResponse = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310
    length = int(response.headers.get("Content-Length", -1))
    if response.status == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else (start + length if length >= 0 else -1)
        return response, start, size
    return response, 0, length


def fetch_file(
    base_url: str, name: str, blob_id: str, directory: Path, progress: Progress | None = None
) -> Fetched:
    """Download one file into `directory` (resuming a part), verify it, move it into place."""
    target = directory / name
    if target.exists() and git_blob_id(target) == blob_id:
        return Fetched(name, target, 0, 0)
    part = directory / f".{name}.part"
    start = part.stat().st_size if part.exists() else 0
    url = base_url.rstrip("/") + "/" + name
    response: HTTPResponse | None
    try:
        response, offset, size = _open(url, start)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part is whole already: verify it below
            response, offset, size = None, start, start
        else:
            raise DownloadFailed(f"{name}: {url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadFailed(f"{name}: cannot reach {url}: {exc}") from None
    written = 0
    if response is not None:
        done = offset
        try:
            with response, part.open("ab" if offset else "wb") as handle:
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
                    done += len(chunk)
                    written += len(chunk)
                    if progress:
                        progress(name, done, max(size, done))
        except (OSError, ValueError) as exc:  # http.client.IncompleteRead is an OSError
            raise DownloadFailed(
                f"{name}: the connection dropped after {done:,} of {size:,} bytes ({exc}); "
                "run the command again to resume"
            ) from None
        if size >= 0 and done < size:
            raise DownloadFailed(
                f"{name}: truncated, {done:,} of {size:,} bytes arrived; run the command "
                "again to resume"
            )
    got = git_blob_id(part)
    if got != blob_id:
        part.unlink()
        raise DownloadFailed(
            f"{name}: checksum mismatch (git blob id {got}, expected {blob_id}); the file "
            f"from {url} is not the pinned goodbooks-10k file and was deleted"
        )
    os.replace(part, target)
    return Fetched(name, target, written, start if offset else 0)


def download_goodbooks(
    directory: Path, base_url: str = GOODBOOKS_URL, progress: Progress | None = None
) -> list[Fetched]:
    """Every goodbooks-10k file into `directory`, verified; stops at the first failure."""
    if not base_url.startswith(("http://", "https://")):
        raise DownloadFailed(f"--base-url must be an http(s) URL: {base_url!r}")
    directory.mkdir(parents=True, exist_ok=True)
    return [
        fetch_file(base_url, name, blob_id, directory, progress)
        for name, blob_id in GOODBOOKS_FILES.items()
    ]
