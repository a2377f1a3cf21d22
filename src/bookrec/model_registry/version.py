"""A model version as every layer sees it: one typed value, its number an `int` everywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from bookrec.errors import NotFound
from bookrec.model_registry.models import ModelVersionRow

VersionStatus = Literal["candidate", "active", "retired", "refused", "pruned"]
_NUMBER = re.compile(r"^[1-9]\d{0,9}$")


def version_number(text: str | int) -> int:
    """A version number as a user typed it ("3"); NotFound for anything that cannot be one."""
    value = str(text).strip()
    if not _NUMBER.match(value) or int(value) > 2**31 - 1:
        raise NotFound("model version", text)
    return int(value)


def is_version_directory(name: str) -> bool:
    """Whether a directory name under the models root is a version number."""
    return _NUMBER.match(name) is not None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: what it is, how it was made, where its artifacts are."""

    number: int
    algo: str
    status: VersionStatus
    path: Path
    status_reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    artifact_uri: str | None = None
    #: sha256 of every artifact file, by its path relative to `path` (POSIX separators)
    checksums: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    activated_at: datetime | None = None
    timings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: ModelVersionRow, root: Path) -> ModelVersion:
        return cls(
            number=row.version,
            algo=row.algo,
            status=cast(VersionStatus, row.status),
            path=root / str(row.version),
            status_reason=row.status_reason,
            params=dict(row.params or {}),
            data=dict(row.data or {}),
            metrics=dict(row.metrics or {}),
            gate=dict(row.gate or {}),
            artifact_uri=row.artifact_uri,
            checksums=dict(row.checksums or {}),
            created_at=row.created_at,
            activated_at=row.activated_at,
            timings=dict(row.timings or {}),
        )

    @property
    def engine(self) -> dict[str, Any]:
        """Where it was fitted: {"name": "local"} or Spark's name, version and master."""
        recorded = self.data.get("engine")
        return dict(recorded) if isinstance(recorded, dict) else {"name": "local"}

    def to_dict(self) -> dict[str, Any]:
        """The public description (CLI `--json`, admin API): JSON-ready values only."""
        return {
            "version": self.number,
            "algo": self.algo,
            "engine": self.engine,
            "status": self.status,
            "status_reason": self.status_reason,
            "metrics": self.metrics,
            "artifact_uri": self.artifact_uri,
            "params": self.params,
            "data": self.data,
            "gate": self.gate,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "activated_at": None if self.activated_at is None else self.activated_at.isoformat(),
            "checksums": self.checksums,
            "timings": self.timings,
        }
