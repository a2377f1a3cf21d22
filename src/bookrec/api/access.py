"""Who may call what: the one place that declares the API's access policy.

| level   | who                                            | a router asks for it       |
|---------|------------------------------------------------|----------------------------|
| public  | anyone                                         | no dependency              |
| reader  | any logged-in account (reader or admin)        | `Reader`                   |
| admin   | an account with role admin                     | `Admin`, `ADMIN_ONLY`      |
| backend | an API key with the route's scope, or an admin | `Backend`, `api_key_or_admin` |
| events  | a logged-in account, or an API key with `events:write` | `Events`           |

Every route under `/api/v1/admin` sits on a router built with `ADMIN_ONLY`, so a route added
there later is guarded without anyone remembering to; `tests/api/test_rbac.py` walks the route
table to prove it. Missing or bad credentials give 401 with `WWW-Authenticate`; valid
credentials that do not allow the operation give 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from bookrec.accounts import api_keys
from bookrec.accounts import service as accounts
from bookrec.accounts.models import User
from bookrec.api.deps import BearerDep, CurrentAdmin, CurrentUser, get_current_admin, state_of
from bookrec.api.schemas import PROBLEM
from bookrec.api.state import AppState
from bookrec.db.session import unit_of_work
from bookrec.errors import Forbidden, Unauthorized

RECOMMENDATIONS_READ = "recommendations:read"
EVENTS_WRITE = "events:write"

#: A logged-in account, reader or admin.
Reader = CurrentUser
#: An admin account.
Admin = CurrentAdmin
#: Router-level guard: every route of a router built with it needs an admin.
ADMIN_ONLY: list[DependsParam] = [Depends(get_current_admin)]
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "Missing, invalid or expired credentials"},
    403: {**PROBLEM, "description": "Not an admin account"},
}


def admin_router() -> APIRouter:
    """A router under `/admin` whose every route needs an admin account."""
    return APIRouter(
        prefix="/admin", tags=["admin"], dependencies=ADMIN_ONLY, responses=ADMIN_RESPONSES
    )


_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key from POST /api/v1/admin/api-keys (server-to-server routes)",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling a server-to-server route: an app's API key or an admin account."""

    kind: Literal["api_key", "admin"]
    key_id: int | None = None
    user: User | None = None


def api_key_or_admin(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting an `X-API-Key` carrying `scope`, or an admin's bearer token.

    A key this worker verified lately is accepted from memory on the event loop; anything
    that needs the database is checked in the thread pool, in a transaction of its own.
    """

    async def principal(
        request: Request,
        api_key: Annotated[str | None, Depends(_api_key_header)],
        credentials: BearerDep,
    ) -> Principal:
        state = state_of(request)  # hot path: no StateDep
        if api_key is not None:
            key = api_keys.recently_verified(api_key, scope, state.auth.verified_keys)
            if key is None:
                key = await run_in_threadpool(_verify_key, state, api_key, scope)
            return Principal(kind="api_key", key_id=key.key_id)
        if credentials is None:
            raise Unauthorized(
                "send `X-API-Key: <key>` or an admin's `Authorization: Bearer <access token>`",
                challenge=api_keys.API_KEY_CHALLENGE,
            )
        user = await run_in_threadpool(_bearer_user, state, credentials.credentials)
        if user.role != "admin":
            raise Forbidden(f"this needs an API key with scope {scope!r} or an admin account")
        return Principal(kind="admin", user=user)

    return principal


def _verify_key(state: AppState, secret: str, scope: str) -> api_keys.VerifiedKey:
    with unit_of_work(state.sessions) as session:
        return api_keys.authenticate(session, secret, scope, state.auth.verified_keys)


def _bearer_user(state: AppState, token: str) -> User:
    with unit_of_work(state.sessions) as session:
        return accounts.current_user(session, state.auth, token).user


#: An app's backend asking for recommendations on behalf of its reader (or an admin).
Backend = Annotated[Principal, Depends(api_key_or_admin(RECOMMENDATIONS_READ))]


@dataclass(frozen=True)
class EventSender:
    """Who reports events: a logged-in reader (their own) or an app's API key (its readers',
    each event naming the data set `user_id`)."""

    reader_id: int | None = None
    key_id: int | None = None


async def event_sender(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    credentials: BearerDep,
) -> EventSender:
    state = state_of(request)
    if api_key is not None:
        key = api_keys.recently_verified(api_key, EVENTS_WRITE, state.auth.verified_keys)
        if key is None:
            key = await run_in_threadpool(_verify_key, state, api_key, EVENTS_WRITE)
        return EventSender(key_id=key.key_id)
    if credentials is None:
        raise Unauthorized(
            "log in and send `Authorization: Bearer <access token>` (your own events), or an "
            f"app's `X-API-Key: <key>` with scope {EVENTS_WRITE!r} (its readers' events)",
            challenge='Bearer, ApiKey realm="bookrec"',
        )
    user = await run_in_threadpool(_bearer_user, state, credentials.credentials)
    return EventSender(reader_id=user.reader_id)


#: A reader reporting their own events, or an app's backend reporting its readers'.
Events = Annotated[EventSender, Depends(event_sender)]
