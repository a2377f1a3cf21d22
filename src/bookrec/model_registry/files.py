"""A version's artifact files on disk: assembled in staging, hashed, verified, swept up.

A version directory holds `model/` (the trained recommender), `popular/` and `trending/`
(the popularity fallbacks every version carries) and, optionally, `lists/` (every reader's
precomputed list). It is assembled in a hidden staging directory under the models root and
renamed into place by the registry inside the transaction that registers it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import structlog

from bookrec.model_registry.version import is_version_directory
from bookrec.recsys.artifacts import ArtifactError, sha256_of

log = structlog.get_logger(__name__)

STAGING_PREFIX = ".staging-"
#: Staging and orphaned version directories older than this are removed by a sweep.
STALE_SECONDS = 3600.0


def new_staging(root: Path) -> Path:
    """A fresh hidden directory under `root` to assemble a version in."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))


def check_staging(root: Path, staging: Path) -> Path:
    """`staging` itself, if it is a staging directory of `root`; ValueError otherwise."""
    staging = Path(staging)
    if staging.parent.resolve() != root.resolve() or not staging.name.startswith(STAGING_PREFIX):
        raise ValueError(f"{staging} is not a staging directory of {root}")
    return staging


def checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory`, by path relative to it (POSIX separators)."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link; artifacts are plain files")
        if path.is_file():
            found[path.relative_to(directory).as_posix()] = sha256_of(path)
    return found


def verify(directory: Path, recorded: dict[str, str]) -> None:
    """Every recorded file exists under `directory` and matches its sha256.

    Raises `ArtifactError` naming the first missing or altered file.
    """
    if not recorded:
        raise ArtifactError(f"no artifact checksums are recorded for {directory}")
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is missing")
    for relative, expected in recorded.items():
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
            raise ArtifactError(f"recorded artifact path {relative!r} is not inside {directory}")
        path = directory.joinpath(*parts)
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        if sha256_of(path) != expected:
            raise ArtifactError(f"{path} fails its sha256 checksum")


def sweep(root: Path, registered: Iterable[int], older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove staging directories and unregistered version directories older than
    `older_than` seconds (left by killed trainers); returns what was removed."""
    if not root.is_dir():
        return []
    numbers = {str(number) for number in registered}
    cutoff = time.time() - older_than
    removed = []
    for path in root.iterdir():
        stale_staging = path.name.startswith(STAGING_PREFIX)
        orphan = (
            is_version_directory(path.name)
            and path.name not in numbers
            and not (path / "version.json").exists()  # a pre-database registry's version
        )
        try:
            if path.is_dir() and (stale_staging or orphan) and path.stat().st_mtime < cutoff:
                shutil.rmtree(path)
                removed.append(path)
        except OSError as exc:
            log.warning("model_sweep_failed", path=str(path), error=str(exc))
    return removed
