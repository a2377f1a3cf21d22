"""What the API takes and says about accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bookrec.accounts.passwords import MAX_PASSWORD_LENGTH
from bookrec.readers.schemas import StoredTime

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


class TokenPair(BaseModel):
    access_token: str = Field(description="JWT to send as `Authorization: Bearer …`")
    refresh_token: str = Field(description="Opaque; trade it at /auth/refresh, once")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires")


class AccountInfo(BaseModel):
    user_id: int
    email: str
    role: Literal["reader", "admin"]
    reader_id: int
    reader_external_id: int | None = Field(
        description="The data set's user id when the account is linked to an imported reader"
    )
    created_at: datetime
    disabled: bool


class RatingExport(BaseModel):
    book_id: int
    title: str
    rating: int
    rated_at: StoredTime | None = Field(description="ISO 8601, UTC, when known")


class ShelfExport(BaseModel):
    book_id: int
    title: str
    added_at: StoredTime | None = Field(description="ISO 8601, UTC, when known")


class EventExport(BaseModel):
    event_id: int
    kind: str
    book_id: int | None
    occurred_at: StoredTime = Field(description="ISO 8601, UTC")
    context: dict[str, Any] | None


class SessionExport(BaseModel):
    """One refresh token of a login (its hash is never exported)."""

    session_id: str = Field(description="The login this token belongs to (its token family)")
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class AuditEventExport(BaseModel):
    occurred_at: datetime
    action: str
    target: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]


class ExposureExport(BaseModel):
    experiment_id: int
    variant: str
    book_id: int
    shown_at: StoredTime = Field(description="ISO 8601, UTC")
    clicked_at: StoredTime | None = Field(description="ISO 8601, UTC; null: not clicked")


class AccountExport(BaseModel):
    """Everything bookrec holds about one account and its reader (GDPR art. 15 and 20)."""

    exported_at: datetime
    account: AccountInfo
    ratings: list[RatingExport]
    shelf: list[ShelfExport]
    events: list[EventExport]
    sessions: list[SessionExport]
    audit_events: list[AuditEventExport] = Field(
        description="Security events done by or about this account"
    )
    experiment_exposures: list[ExposureExport] = Field(
        description="Books experiments showed you, by experiment and variant, and your clicks"
    )
