"""What the admin API takes and returns for experiments."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bookrec.readers.schemas import StoredTime

VariantName = Annotated[
    str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
StrategyName = Literal["personal", "popular", "trending"]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: VariantName = Field(description="Letters, digits, '_', '.', '-' (e.g. control)")
    strategy: StrategyName | None = Field(
        None, description="personal (default), popular or trending"
    )
    model_version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A registered model version; default: the active one"
    )
    weight: float = Field(1.0, gt=0, le=1000, description="Share of readers, relative to the rest")


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    variants: list[VariantIn] = Field(
        min_length=2,
        max_length=10,
        description="The first is the control the others are compared to",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ExperimentIn:
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ, got {names}")
        return self


class VariantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    strategy: str | None
    model_version: int | None
    weight: float


class ExperimentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    experiment_id: int
    name: str
    description: str | None
    surface: str
    status: Literal["draft", "running", "stopped", "shipped"]
    variants: list[VariantOut]
    created_at: StoredTime
    started_at: StoredTime | None
    stopped_at: StoredTime | None
    shipped_variant: str | None


class ExperimentReport(ExperimentOut):
    results: dict[str, Any] = Field(
        description="Per variant readers, impressions, clicks, CTR with a 95 % interval; each "
        "challenger against the control (difference, interval, p-value); the sample-ratio check"
    )


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: VariantName
    force: bool = Field(
        False, description="Ship before every variant has the minimum number of readers"
    )
