"""Settings refuse what would be unsafe in production, and say what to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bookrec.config import Settings

GOOD_KEY = "0123456789abcdef0123456789abcdef-prod"


def test_development_has_a_default_secret() -> None:
    assert len(Settings(BOOKREC_ENV="development").secret_key.get_secret_value()) >= 32
    assert Settings(BOOKREC_ENV="test").access_token_minutes == 15


@pytest.mark.parametrize("key", [None, "short-key"])
def test_production_refuses_a_missing_default_or_short_secret(key: str | None) -> None:
    extra = {} if key is None else {"BOOKREC_SECRET_KEY": key}
    with pytest.raises(ValidationError, match="BOOKREC_SECRET_KEY") as caught:
        Settings(BOOKREC_ENV="production", **extra)
    assert "secrets.token_urlsafe" in str(caught.value)


def test_production_refuses_weak_hashing_and_accepts_a_real_key() -> None:
    with pytest.raises(ValidationError, match="BOOKREC_ARGON2_MEMORY_KIB"):
        Settings(BOOKREC_ENV="production", BOOKREC_SECRET_KEY=GOOD_KEY, BOOKREC_ARGON2_TIME_COST=1)
    settings = Settings(BOOKREC_ENV="production", BOOKREC_SECRET_KEY=GOOD_KEY)
    assert settings.secret_key.get_secret_value() == GOOD_KEY
    assert GOOD_KEY not in repr(settings)


def test_production_start_fails_with_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from bookrec.api.app import create_app

    monkeypatch.setenv("BOOKREC_ENV", "production")
    monkeypatch.delenv("BOOKREC_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="BOOKREC_SECRET_KEY"):
        create_app()
