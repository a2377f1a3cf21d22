"""The application factory: `create_app()` builds a fully wired FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bookrec import __version__
from bookrec.accounts.service import Authenticator
from bookrec.api import exception_handlers
from bookrec.api.middleware import RequestContextMiddleware
from bookrec.api.routers import auth, books, health, recommendations
from bookrec.api.state import AppState
from bookrec.config import Settings, load_settings
from bookrec.db.engine import make_engine, make_session_factory
from bookrec.observability.logging import configure_logging
from bookrec.serving.engine import ModelStore
from bookrec.training.registry import Registry

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.sqlalchemy_url)
        models = ModelStore(Registry(settings.models_dir))
        models.refresh()
        app.state.bookrec = AppState(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            models=models,
            auth=Authenticator.of(settings),
        )
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="bookrec",
        version=__version__,
        summary="Book recommendations with reasons: personal, similar, popular and trending.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    exception_handlers.install(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    for router in (auth.router, books.router, recommendations.router):
        app.include_router(router, prefix=API_PREFIX)
    return app
