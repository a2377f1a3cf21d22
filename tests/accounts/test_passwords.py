"""Password hashing and policy, without a database."""

from __future__ import annotations

import pytest

from bookrec.accounts.passwords import (
    check_password_policy,
    hash_password,
    make_hasher,
    verify_password,
)
from bookrec.errors import InvalidInput

STRONG = "violet-harbour-tandem-41"


def test_hash_is_argon2id_and_verifies() -> None:
    hasher = make_hasher(time_cost=1, memory_kib=64, parallelism=1)
    stored = hash_password(hasher, STRONG)
    assert stored.startswith("$argon2id$")
    assert STRONG not in stored
    assert verify_password(hasher, stored, STRONG) == (True, None)
    assert verify_password(hasher, stored, STRONG + "x") == (False, None)
    assert verify_password(hasher, "not a hash", STRONG) == (False, None)


def test_a_hash_with_older_parameters_is_rehashed_on_success() -> None:
    weak = make_hasher(time_cost=1, memory_kib=64, parallelism=1)
    stronger = make_hasher(time_cost=2, memory_kib=128, parallelism=1)
    check = verify_password(stronger, hash_password(weak, STRONG), STRONG)
    assert check.ok and check.new_hash is not None
    assert "m=128,t=2" in check.new_hash
    assert verify_password(stronger, check.new_hash, STRONG) == (True, None)


def test_secure_defaults() -> None:
    from bookrec.config import Settings

    settings = Settings()
    assert settings.argon2_memory_kib >= 19 * 1024 and settings.argon2_time_cost >= 2


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10 characters"),
        ("password123", "too easy to guess"),
        ("qwertyuiop", "too easy to guess"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("xX-ada.lovelace-Xx-9173", "name part of your email"),
        ("x" * 129, "at most 128"),
    ],
)
def test_policy_refuses(password: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        check_password_policy(password, "Ada.Lovelace@example.org")
    assert caught.value.extra["field"] == "password"


def test_policy_accepts_a_passphrase() -> None:
    check_password_policy(STRONG, "ada@example.org")
