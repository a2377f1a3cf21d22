"""Typed dependencies: routers declare what they need, not how to get it.

Dependencies that only read memory are `async def`: FastAPI runs them on the event loop
instead of handing each to the thread pool. Those that do I/O (the session, token checks)
stay plain functions, run in the pool.

The worker's state is read with `state_of(request)`. Dependencies on the list routes (the
hot path) take the request and call it rather than depending on `StateDep`: every
dependency FastAPI solves costs work on each request, and this saves 11 % of a list
request's instructions (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from bookrec.accounts import service as accounts
from bookrec.accounts.audit import Origin
from bookrec.accounts.models import User
from bookrec.api.schemas import MAX_PAGE_SIZE, Page
from bookrec.api.state import AppState
from bookrec.config import Settings
from bookrec.db.session import unit_of_work
from bookrec.errors import Forbidden, Unauthorized
from bookrec.model_registry.registry import ModelRegistry
from bookrec.serving.engine import ServingEngine
from bookrec.serving.service import RecommendationService

T = TypeVar("T")


def state_of(request: Request) -> AppState:
    """What the lifespan built for this worker (`api.app.create_app`)."""
    state: AppState = request.app.state.bookrec
    return state


async def get_state(request: Request) -> AppState:
    return state_of(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_session(state: StateDep) -> Iterator[Session]:
    """One unit of work per request: commit on success, roll back on any error (except an
    error raised with `keep_changes=True`, whose own writes must last)."""
    with unit_of_work(state.sessions) as session:
        yield session


def catalogue_write(request: Request) -> Iterator[None]:
    """For a route that changes books; it must come before every dependency on the session,
    so that its exit runs after the session's commit: then this worker reloads its view of
    the catalogue (its own change answers from the next request) and tells the others. A
    route that fails, or a commit that fails, changes nothing and skips it."""
    yield
    state_of(request).serving.catalogue_changed()


async def get_serving(state: StateDep) -> ServingEngine:
    return state.serving


async def get_recommendations(request: Request) -> RecommendationService:
    return state_of(request).serving.recommendations  # hot path: no StateDep


async def get_registry(state: StateDep) -> ModelRegistry:
    """The registry the worker's model store reads."""
    return state.serving.models.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
#: Scoped to the route function: the transaction commits before the response is sent, so a
#: 2xx means committed, and a failed COMMIT is answered (503 or 500) instead of dropping the
#: connection after a 2xx went out.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ServingDep = Annotated[ServingEngine, Depends(get_serving)]
#: First in a book-writing route's parameters (see `catalogue_write`).
CatalogueWriteDep = Annotated[None, Depends(catalogue_write, scope="function")]
RecommendationsDep = Annotated[RecommendationService, Depends(get_recommendations)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_authenticator(state: StateDep) -> accounts.Authenticator:
    return state.auth


async def get_origin(request: Request) -> Origin:
    return Origin(
        ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


AuthenticatorDep = Annotated[accounts.Authenticator, Depends(get_authenticator)]
OriginDep = Annotated[Origin, Depends(get_origin)]
bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def get_authenticated(
    session: SessionDep, auth: AuthenticatorDep, credentials: BearerDep
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
    """`page` and `size` query parameters, and the page of a listing they select."""

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

    def of(self, items: Sequence[T], total: int) -> Page[T]:
        """The answer: these items, as this page of `total`."""
        return Page(items=list(items), page=self.page, size=self.size, total=total)


PageDep = Annotated[Pagination, Depends()]
