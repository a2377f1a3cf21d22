"""What the API takes and says about accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bookrec.accounts.passwords import MAX_PASSWORD_LENGTH
from bookrec.accounts.tokens import as_utc

MAX_EMAIL_LENGTH = 254


class Credentials(BaseModel):
    email: str = Field(min_length=3, max_length=MAX_EMAIL_LENGTH, examples=["ada@example.org"])
    password: str = Field(
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH,
        description="At least 10 characters, hard to guess, without your email's name",
    )


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    email: str
    role: Literal["reader", "admin"]
    reader_id: int = Field(description="The reader whose ratings and shelf are this account's")
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class TokenPair(BaseModel):
    access_token: str = Field(description="JWT to send as `Authorization: Bearer …`")
    refresh_token: str = Field(description="Opaque; trade it at /auth/refresh, once")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires")
