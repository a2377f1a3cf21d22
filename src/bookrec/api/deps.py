"""Typed dependencies: routers declare what they need, not how to get it.

Dependencies that only read memory are `async def`: FastAPI runs them on the event loop
instead of handing each to the thread pool (a hop costs tens of microseconds per request).
Those that do I/O (the session, token checks) stay plain functions, run in the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from bookrec.accounts import service as accounts
from bookrec.accounts.audit import Origin
from bookrec.accounts.models import User
from bookrec.api.schemas import MAX_PAGE_SIZE
from bookrec.api.state import AppState
from bookrec.config import Settings
from bookrec.errors import BookrecError, Forbidden, ModelUnavailable, Unauthorized
from bookrec.serving.engine import LoadedModel, ServingEngine


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.bookrec
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_session(state: StateDep) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error.

    The exception is an error raised with `keep_changes=True`: a refusal whose own writes
    must last (the audit event of a failed login, a revoked token family).
    """
    with state.sessions() as session:
        session.begin()
        try:
            yield session
        except BookrecError as exc:
            if exc.keep_changes:
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        else:
            session.commit()


async def get_serving(state: StateDep) -> ServingEngine:
    return state.serving


async def get_model(request: Request) -> LoadedModel:
    state: AppState = request.app.state.bookrec  # not StateDep: a nested dependency costs time
    loaded = state.serving.current()
    if loaded is None:
        raise ModelUnavailable(
            "no trained model is active yet: run `bookrec train` (or POST /api/v1/admin/train)"
        )
    return loaded


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
ServingDep = Annotated[ServingEngine, Depends(get_serving)]


async def get_authenticator(state: StateDep) -> accounts.Authenticator:
    return state.auth


async def get_origin(request: Request) -> Origin:
    return Origin(
        ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


AuthenticatorDep = Annotated[accounts.Authenticator, Depends(get_authenticator)]
OriginDep = Annotated[Origin, Depends(get_origin)]
_bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


def get_authenticated(
    session: SessionDep,
    auth: AuthenticatorDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> accounts.Authenticated:
    if credentials is None:
        raise Unauthorized("log in and send `Authorization: Bearer <access token>`")
    return accounts.current_user(session, auth, credentials.credentials)


AuthenticatedDep = Annotated[accounts.Authenticated, Depends(get_authenticated)]


def get_current_user(authenticated: AuthenticatedDep) -> User:
    return authenticated.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_admin(user: CurrentUser) -> User:
    if user.role != "admin":
        raise Forbidden("this needs an admin account")
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]


class Pagination:
    def __init__(
        self,
        page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number")] = 1,
        size: Annotated[
            int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}")
        ] = 20,
    ) -> None:
        self.page = page
        self.size = size

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


PageDep = Annotated[Pagination, Depends()]
