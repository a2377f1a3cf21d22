"""Password hashing (argon2id) and the policy a new password must meet."""

from __future__ import annotations

import re
from typing import NamedTuple

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bookrec.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
#: Long enough for any passphrase, short enough that hashing and strength checks stay cheap.
MAX_PASSWORD_LENGTH = 128
#: zxcvbn's 0..4 scale; 3 means "safely unguessable" against an offline slow-hash attack.
MIN_PASSWORD_SCORE = 3
#: Pieces of an email's name (split at dots, dashes, digits...) this long count on their own.
MIN_NAME_PIECE = 4
_NOT_LETTERS = re.compile(r"[\W\d_]+")


class PasswordCheck(NamedTuple):
    ok: bool
    new_hash: str | None  # set when the stored hash used weaker parameters than today's


def make_hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher with the given cost (see `Settings.argon2_*`)."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, password_hash: str, password: str) -> PasswordCheck:
    """Check a password against its stored hash in constant time; offer a rehash when due."""
    try:
        hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(ok=False, new_hash=None)
    if hasher.check_needs_rehash(password_hash):
        return PasswordCheck(ok=True, new_hash=hasher.hash(password))
    return PasswordCheck(ok=True, new_hash=None)


def check_password_policy(password: str, email: str) -> None:
    """Refuse a password that is short, common or guessable, or contains the email's name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _weak(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _weak(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    local_part = email.split("@", 1)[0].split("+", 1)[0]
    if _contains_name(password, local_part):
        raise _weak("must not contain the name part of your email address")
    from zxcvbn import zxcvbn  # imported here: its word lists take a moment to load

    strength = zxcvbn(
        password,
        user_inputs=[email, local_part, "bookrec", "goodreads"],
        max_length=MAX_PASSWORD_LENGTH,
    )
    if strength["score"] < MIN_PASSWORD_SCORE:
        feedback = strength["feedback"]
        hints = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        reason = " ".join(h for h in hints if h) or "Add another word or two."
        raise _weak(f"is too easy to guess: {reason}")


def _letters(text: str) -> str:
    """Lower-case letters only: 'Grace.Hopper-99' -> 'gracehopper'."""
    return _NOT_LETTERS.sub("", text.casefold())


def _contains_name(password: str, name: str) -> bool:
    """Whether the password holds the name, whole or a long piece of it, ignoring case,
    dots, dashes, digits and other separators (`gracehopper-99` for `grace.hopper`)."""
    letters = _letters(password)
    whole = _letters(name)
    if len(whole) >= 3 and whole in letters:
        return True
    pieces = (_letters(piece) for piece in _NOT_LETTERS.split(name.casefold()))
    return any(len(piece) >= MIN_NAME_PIECE and piece in letters for piece in pieces)


def _weak(reason: str) -> InvalidInput:
    return InvalidInput(f"password {reason}", field="password")
