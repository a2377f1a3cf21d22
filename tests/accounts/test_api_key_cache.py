"""A worker trusts an API key it verified for a few seconds, never longer."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from tests.fixtures.clock import FakeClock

from bookrec.accounts import api_keys
from bookrec.errors import Forbidden, Unauthorized

SCOPE = "recommendations:read"


def mint(engine: Engine) -> tuple[int, str]:
    with Session(engine) as session, session.begin():
        issued = api_keys.create(session, "shop", [SCOPE], actor_user_id=None)
        return issued.key.key_id, issued.secret


def check(engine: Engine, secret: str, verified: api_keys.VerifiedKeys, scope: str = SCOPE) -> int:
    with Session(engine) as session, session.begin():
        return api_keys.authenticate(session, secret, scope, verified).key_id


def revoke(engine: Engine, key_id: int) -> None:
    with Session(engine) as session, session.begin():
        api_keys.revoke(session, key_id, actor_user_id=None)


def test_a_revocation_elsewhere_counts_within_the_cache_time(engine: Engine) -> None:
    key_id, secret = mint(engine)
    clock = FakeClock()
    verified = api_keys.VerifiedKeys(seconds=10, clock=clock)
    assert check(engine, secret, verified) == key_id
    revoke(engine, key_id)  # by another worker: this one's cache does not know yet
    clock.advance(9)
    assert check(engine, secret, verified) == key_id
    clock.advance(2)
    with pytest.raises(Unauthorized):
        check(engine, secret, verified)


def test_without_a_cache_every_request_asks_the_database(engine: Engine) -> None:
    key_id, secret = mint(engine)
    verified = api_keys.VerifiedKeys(seconds=0)
    assert check(engine, secret, verified) == key_id
    revoke(engine, key_id)
    with pytest.raises(Unauthorized):
        check(engine, secret, verified)


def test_scopes_are_checked_on_cached_keys_too(engine: Engine) -> None:
    _, secret = mint(engine)
    verified = api_keys.VerifiedKeys(seconds=60)
    check(engine, secret, verified)
    with pytest.raises(Forbidden):
        check(engine, secret, verified, scope="admin:everything")
    verified.clear()
    with pytest.raises(Unauthorized):
        check(engine, "brk_made-up", verified)
