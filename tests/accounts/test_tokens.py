"""Access tokens: what decoding accepts and what it refuses."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from bookrec.accounts.tokens import TokenConfig, decode_access_token, issue_access_token
from bookrec.db.base import utcnow
from bookrec.errors import Unauthorized

CONFIG = TokenConfig(
    secret_key="k" * 40,
    issuer="bookrec",
    audience="bookrec-api",
    access_ttl=timedelta(minutes=15),
    refresh_ttl=timedelta(days=30),
)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    now = utcnow()
    claims = decode_access_token(CONFIG, issue_access_token(CONFIG, 7, "admin", "fam", now))
    assert (claims.user_id, claims.role, claims.session_id) == (7, "admin", "fam")
    assert timedelta(minutes=14) < claims.expires_at - now <= timedelta(minutes=15)
    raw = jwt.decode(
        issue_access_token(CONFIG, 7, "admin", "fam", now),
        options={"verify_signature": False},
    )
    assert {"iss", "aud", "exp", "iat", "jti", "sub", "role"} <= set(raw)


def _forged(**overrides: object) -> str:
    now = utcnow()
    claims: dict[str, object] = {
        "iss": "bookrec",
        "aud": "bookrec-api",
        "sub": "1",
        "role": "admin",
        "sid": "fam",
        "jti": "j",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return jwt.encode(claims, CONFIG.secret_key, algorithm="HS256")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "",
        "a.b.c",
        _forged(aud="someone-else"),
        _forged(iss="someone-else"),
        _forged(exp=utcnow() - timedelta(seconds=5)),
        jwt.encode({"sub": "1", "role": "admin"}, CONFIG.secret_key, algorithm="HS256"),
        jwt.encode(
            {"iss": "bookrec", "aud": "bookrec-api", "sub": "1"}, "w" * 40, algorithm="HS256"
        ),
        jwt.encode({"iss": "bookrec", "aud": "bookrec-api", "sub": "1"}, "k" * 64, "HS512"),
        # alg=none: a header claiming no signature, and an empty signature
        _b64({"alg": "none", "typ": "JWT"})
        + "."
        + _b64({"iss": "bookrec", "aud": "bookrec-api", "sub": "1", "role": "admin"})
        + ".",
    ],
)
def test_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        decode_access_token(CONFIG, token)
