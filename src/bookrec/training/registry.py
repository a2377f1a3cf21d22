"""Model versions on local disk: var/models/<version>/ and an atomic ACTIVE pointer.

A version directory holds `version.json` (algorithm, params, data snapshot, created time)
and artifacts in subdirectories: `model/` (the trained recommender), `popular/` and
`trending/` (the popularity fallbacks every version carries). A version is assembled in a
hidden staging directory and renamed into place, so a crash never registers half a model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bookrec.errors import NotFound

ACTIVE = "ACTIVE"
VERSION_FILE = "version.json"
_VERSION_RE = re.compile(r"^\d+$")


@dataclass(frozen=True)
class ModelVersion:
    version: str
    path: Path
    info: dict[str, Any]

    @property
    def algo(self) -> str:
        return str(self.info.get("algo", "?"))


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[ModelVersion]:
        """Every complete version, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if path.is_dir() and _VERSION_RE.match(path.name) and (path / VERSION_FILE).is_file():
                try:
                    info = json.loads((path / VERSION_FILE).read_text())
                except (OSError, ValueError):
                    continue
                found.append(ModelVersion(path.name, path, info))
        return sorted(found, key=lambda v: int(v.version))

    def get(self, version: str) -> ModelVersion:
        for candidate in self.versions():
            if candidate.version == str(version):
                return candidate
        raise NotFound("model version", version)

    def active_version(self) -> str | None:
        try:
            return (self.root / ACTIVE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def active(self) -> ModelVersion | None:
        version = self.active_version()
        if version is None:
            return None
        try:
            return self.get(version)
        except NotFound:
            return None

    def activate(self, version: str) -> ModelVersion:
        """Point ACTIVE at `version` with one atomic rename."""
        chosen = self.get(version)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".ACTIVE.", dir=self.root)
        with os.fdopen(fd, "w") as handle:
            handle.write(chosen.version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.root / ACTIVE)
        return chosen

    def staging(self) -> Path:
        """A fresh hidden directory to assemble a version in."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def commit(self, staging: Path, info: dict[str, Any]) -> ModelVersion:
        """Write version.json and rename the staging directory to the next version number."""
        while True:
            existing = [int(p.name) for p in self.root.iterdir() if _VERSION_RE.match(p.name)]
            version = str(max(existing, default=0) + 1)
            info = {**info, "version": version, "created_at": datetime.now(UTC).isoformat()}
            (staging / VERSION_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
            try:
                os.rename(staging, self.root / version)
            except OSError:
                if (self.root / version).exists():
                    continue  # another trainer took this number: take the next one
                raise
            return ModelVersion(version, self.root / version, info)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
