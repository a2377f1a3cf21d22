"""Settings: one validated object, read from the environment and `.env`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service reads from its environment.

    Unprefixed names (`DATABASE_URL`, `REDIS_URL`) follow the twelve-factor convention that
    hosting platforms set; everything specific to bookrec is prefixed `BOOKREC_`.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias="BOOKREC_ENV"
    )
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    var_dir: Path = Field(Path("var"), validation_alias="BOOKREC_VAR_DIR")
    host: str = Field("127.0.0.1", validation_alias="BOOKREC_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="BOOKREC_PORT")
    workers: int = Field(1, ge=1, le=64, validation_alias="BOOKREC_WORKERS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="BOOKREC_LOG_LEVEL"
    )
    log_format: Literal["json", "console"] = Field("json", validation_alias="BOOKREC_LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc}); e.g. postgresql://user@host/db") from exc
        backend = url.get_backend_name()
        if backend not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy connects to; PostgreSQL always goes through psycopg 3."""
        if self.database_url is None:
            return f"sqlite:///{(self.var_dir / 'bookrec.sqlite3').resolve()}"
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"


def load_settings() -> Settings:
    """Read settings from the environment; raises pydantic's ValidationError on a bad value."""
    return Settings()
