"""The application factory: `create_app()` builds a fully wired FastAPI app.

It changes nothing process-wide (tests and tools call it too): `bookrec serve`'s workers are
tuned by their own entry point, `api.server.served_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

import bookrec.schema  # noqa: F401  (every ORM model, so every mapper configures)
from bookrec import __version__
from bookrec.accounts.service import Authenticator
from bookrec.api import exception_handlers
from bookrec.api.limits import general_limit
from bookrec.api.middleware import (
    BodySizeLimitMiddleware,
    NulRefusalMiddleware,
    RequestContextMiddleware,
)
from bookrec.api.ratelimit import RateLimiter
from bookrec.api.routers import (
    activity,
    admin,
    auth,
    books,
    health,
    metrics,
    privacy,
    recommendations,
)
from bookrec.api.routers.experiments_admin import router as experiments_admin_router
from bookrec.api.routers.jobs_admin import router as jobs_admin_router
from bookrec.api.routers.models_admin import router as models_admin_router
from bookrec.api.state import AppState
from bookrec.config import Settings, load_settings
from bookrec.db.engine import make_engine
from bookrec.db.session import make_session_factory
from bookrec.serving.engine import ServingEngine
from bookrec.web.install import install as install_web_app

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # handlers' threads (queries); scoring has its own, smaller limit (scoring_threads)
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        # every handler and scoring thread (and the refresher) keeps a connection: none is
        # opened per request
        engine = make_engine(
            settings.sqlalchemy_url,
            pool_size=settings.worker_threads + settings.scoring_threads + 2,
        )
        serving = ServingEngine.of(settings, engine)
        serving.start()
        app.state.bookrec = AppState(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            serving=serving,
            auth=Authenticator.of(settings),
            rate_limiter=RateLimiter.of(settings),
        )
        try:
            yield
        finally:
            serving.stop()
            app.state.bookrec.rate_limiter.close()
            engine.dispose()

    app = FastAPI(
        title="bookrec",
        version=__version__,
        summary="Book recommendations with reasons: personal, similar, popular and trending.",
        lifespan=lifespan,
        docs_url=None,  # the web app serves /docs with Swagger UI's files from the package
        redoc_url=None,
        dependencies=[Depends(general_limit)],
    )
    exception_handlers.install(app)
    app.add_middleware(NulRefusalMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600,
        )
    # outermost: request ids and security headers reach every answer, 413 and CORS ones too
    app.add_middleware(
        RequestContextMiddleware,
        route_prefixes=(API_PREFIX,),
        # tokens, personal data, personal lists and admin answers (API keys) are never cached
        no_store_prefixes=(
            f"{API_PREFIX}/auth",
            f"{API_PREFIX}/me",
            f"{API_PREFIX}/admin",
            f"{API_PREFIX}/recommendations/me",
            f"{API_PREFIX}/recommendations/users",
            f"{API_PREFIX}/recommendations/batch",
        ),
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    # routes are matched in order: the busiest (lists, books) first
    for router in (
        recommendations.router,
        books.router,
        activity.router,
        auth.router,
        privacy.router,
        admin.router,
        models_admin_router,
        jobs_admin_router,
        experiments_admin_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    install_web_app(app)
    return app
