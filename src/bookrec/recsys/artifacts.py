"""Model artifacts on disk: one .npy per array plus manifest.json with sha256 of every file.

Never pickle: arrays load with `allow_pickle=False` (a pickle can run code), and every file's
checksum is verified before anything is used. Artifacts are written into a temporary sibling
directory and renamed into place, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ArtifactError(Exception):
    """An artifact is missing, incomplete or fails its checksum."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifact(
    directory: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Write arrays and manifest atomically into `directory` (which must not exist yet)."""
    directory = Path(directory)
    if directory.exists():
        raise ArtifactError(f"{directory} already exists")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        files = {}
        for name, array in arrays.items():
            if not name.isidentifier():
                raise ArtifactError(f"bad array name {name!r}")
            array = np.asarray(array)
            if array.dtype == object:
                raise ArtifactError(f"array {name!r} has dtype object, which would need pickle")
            path = staging / f"{name}.npy"
            np.save(path, array, allow_pickle=False)
            files[path.name] = sha256_of(path)
        manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
        write_manifest(staging, manifest)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write `directory`'s manifest durably, replacing any in one rename."""
    temporary = Path(directory) / f".{MANIFEST}.tmp"
    with temporary.open("w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(Path(directory) / MANIFEST)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{path} is not a bookrec manifest")
    return manifest


def read_artifact(
    directory: Path, mmap: bool = True
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Verify every checksum, then load the arrays (memory-mapped by default)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    arrays = {}
    for file_name, expected in manifest["files"].items():
        path = directory / file_name
        if Path(file_name).name != file_name or not file_name.endswith(".npy"):
            raise ArtifactError(f"manifest names an unexpected file {file_name!r}")
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        if sha256_of(path) != expected:
            raise ArtifactError(f"{path} fails its sha256 checksum")
        try:
            arrays[file_name[:-4]] = np.load(
                path, allow_pickle=False, mmap_mode="r" if mmap else None
            )
        except ValueError as exc:
            raise ArtifactError(f"{path} is not a plain numpy array: {exc}") from None
    return manifest, arrays
