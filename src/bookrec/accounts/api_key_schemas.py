"""What the API takes and says about API keys (the secret appears only in `ApiKeyCreated`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scope = Annotated[str, Field(min_length=1, max_length=64, examples=["recommendations:read"])]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="Who uses the key, e.g. an app")
    scopes: list[Scope] = Field(min_length=1, max_length=10, description="What the key may do")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        name = value.strip()
        if not name or not name.isprintable():
            raise ValueError("a name needs printable characters (no control characters)")
        return name


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key_id: int
    name: str
    prefix: str = Field(description="The first characters after `brk_`, to recognise the key")
    scopes: list[str]
    created_by: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret, shown this once: send it as `X-API-Key`")
