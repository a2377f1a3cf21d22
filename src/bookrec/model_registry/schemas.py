"""The public shape of a model version (admin API; the CLI's `--json` prints the same fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bookrec.model_registry.version import ModelVersion, VersionStatus


class ModelVersionOut(BaseModel):
    version: int = Field(description="The version number")
    algo: str = Field(
        description="The recommender: popularity, content, itemknn, als, ease, hybrid"
    )
    engine: dict[str, Any] = Field(
        description="Where it was fitted: {name: local}, or {name: spark} with the Spark "
        "version, master, Java version and where the ratings came from (jdbc or parquet)"
    )
    status: VersionStatus
    status_reason: str | None = Field(
        None, description="Why it is refused, or why the evaluation gate kept it a candidate"
    )
    metrics: dict[str, Any] = Field(description="Validation metrics on the gate's held-out split")
    artifact_uri: str | None = Field(description="Where its artifacts are (file:// URI)")
    params: dict[str, Any] = Field(description="Hyper-parameters")
    data: dict[str, Any] = Field(
        description="What it was trained on: counts, newest rating time, data set ids"
    )
    gate: dict[str, Any] = Field(
        description="The evaluation gate's decision: metric, both values, tolerance, forced"
    )
    created_at: datetime | None
    activated_at: datetime | None = Field(description="When it last became active")
    checksums: dict[str, str] = Field(description="sha256 of every artifact file")
    timings: dict[str, Any] = Field(description="Seconds per training stage")

    @classmethod
    def of(cls, version: ModelVersion) -> ModelVersionOut:
        return cls.model_validate(version.to_dict())
