"""Typed dependencies: routers declare what they need, not how to get it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from bookrec.api.schemas import MAX_K, MAX_PAGE_SIZE
from bookrec.api.state import AppState
from bookrec.config import Settings
from bookrec.errors import ModelUnavailable
from bookrec.serving.engine import LoadedModel


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.bookrec
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_session(state: StateDep) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error."""
    with state.sessions() as session, session.begin():
        yield session


def get_model(state: StateDep) -> LoadedModel:
    loaded = state.models.current()
    if loaded is None:
        raise ModelUnavailable(
            "no trained model is active yet: run `bookrec train` (or POST /api/v1/admin/train)"
        )
    return loaded


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]


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
KQuery = Annotated[int, Query(ge=1, le=MAX_K, description=f"How many books, 1 to {MAX_K}")]
