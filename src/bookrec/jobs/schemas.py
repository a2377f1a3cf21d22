"""What a training request holds and how a job is shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed"]


class TrainRequest(BaseModel):
    """Train `algo` (default: the best) with `params`; `force` skips the evaluation gate."""

    model_config = ConfigDict(extra="forbid")

    algo: str | None = Field(None, max_length=32, description="Algorithm (default: hybrid)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Hyper-parameters of the algorithm, as an object"
    )
    force: bool = Field(False, description="Promote even if the evaluation gate refuses it")
    activate: bool = Field(True, description="Activate the new version if it is promoted")
    engine: Literal["local", "spark"] = Field(
        "local", description="Where to fit: in the worker (local) or on Apache Spark (als only)"
    )
    spark_master: str | None = Field(
        None,
        max_length=500,
        description="Spark master URL for engine spark (default BOOKREC_SPARK_MASTER)",
    )


class JobOut(BaseModel):
    """A training job as the admin API and `--json` output show it."""

    model_config = ConfigDict(from_attributes=True)

    job_id: int
    kind: str
    status: JobStatus
    stage: str | None
    progress: float = Field(description="Percent done, 0 to 100")
    error: str | None
    request: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="On success: the version number trained, whether it was promoted, the gate"
    )
    trigger: Literal["api", "cli", "schedule"]
    requested_by: str | None
    worker: str | None = Field(description="host:pid of the process that ran it")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
