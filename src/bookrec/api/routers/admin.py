"""Admin operations: API keys for app backends and an overview of what the service holds.

Every route here needs an admin: the router carries `access.ADMIN_ONLY`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response, status
from pydantic import BaseModel, Field

from bookrec.accounts import api_keys, overview
from bookrec.accounts.api_key_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from bookrec.api import access
from bookrec.api.deps import AuthenticatorDep, OriginDep, PageDep, SessionDep, StateDep
from bookrec.api.schemas import PROBLEM, Page

router = access.admin_router()

KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The API key's id")]


class Stats(BaseModel):
    books: int
    readers: int = Field(description="Imported readers and accounts' readers")
    ratings: int
    accounts: int
    model_version: int | None = Field(description="The served model's version, if any")
    model_algo: str | None = None


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key for an app backend (the key is shown only in this answer)",
    responses={422: PROBLEM},
)
def create_api_key(
    session: SessionDep, admin: access.Admin, origin: OriginDep, body: ApiKeyCreate
) -> ApiKeyCreated:
    issued = api_keys.create(
        session, body.name, body.scopes, actor_user_id=admin.user_id, origin=origin
    )
    shown = ApiKeyOut.model_validate(issued.key).model_dump()
    return ApiKeyCreated(**shown, key=issued.secret)


@router.get("/api-keys", summary="API keys, newest first (never their secrets)")
def list_api_keys(session: SessionDep, page: PageDep) -> Page[ApiKeyOut]:
    keys, total = api_keys.page(session, page.offset, page.size)
    return page.of([ApiKeyOut.model_validate(key) for key in keys], total)


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key: it stops working at once on this worker, within"
    " BOOKREC_API_KEY_CACHE_SECONDS (10 s) on the others",
    responses={404: PROBLEM},
)
def revoke_api_key(
    session: SessionDep,
    admin: access.Admin,
    origin: OriginDep,
    auth: AuthenticatorDep,
    key_id: KeyId,
) -> Response:
    api_keys.revoke(session, key_id, actor_user_id=admin.user_id, origin=origin)
    auth.verified_keys.clear()  # at once in this worker; others within the cache's seconds
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/stats", summary="How many books, readers, ratings and accounts; the active model")
def admin_stats(session: SessionDep, state: StateDep) -> Stats:
    loaded = state.serving.current()
    return Stats(
        **overview.counts(session),
        model_version=None if loaded is None else loaded.number,
        model_algo=None if loaded is None else loaded.algo,
    )
