"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bookrec.api.deps import StateDep
from bookrec.db.session import unit_of_work

router = APIRouter(tags=["ops"])


@router.get("/health/live", summary="The process is up")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Ready to serve: database reachable and a model loaded (names the served version)",
)
def ready(state: StateDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    healthy = True
    try:
        with unit_of_work(state.sessions) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok", "backend": state.engine.dialect.name}
    except Exception as exc:  # any failure to reach the database means not ready
        healthy = False
        checks["database"] = {"status": "error", "error": type(exc).__name__}
    model = state.serving.models.status()
    if model["version"] is None:
        healthy = False
        checks["model"] = {"status": "error", **model}
        checks["model"].setdefault("error", "no trained model is active yet")
    else:
        checks["model"] = {"status": "degraded" if model["fallback"] else "ok", **model}
    body = {
        "status": "ready" if healthy else "not_ready",
        "model_version": model["version"],
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)
