"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bookrec.api.deps import StateDep
from bookrec.db.redis import fast_client
from bookrec.db.session import unit_of_work

router = APIRouter(tags=["ops"])


@router.get("/health/live", summary="The process is up")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Ready to serve: database reachable and a model loaded (names the served version);"
    " Redis down or a fallback model is `degraded` (still 200)",
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
    if state.settings.redis_url is not None:
        checks["redis"] = _redis_check(state.settings.redis_url)
    model = state.serving.models.status()
    if model["version"] is None:
        healthy = False
        checks["model"] = {"status": "error", **model}
        checks["model"].setdefault("error", "no trained model is active yet")
    else:
        checks["model"] = {"status": "degraded" if model["fallback"] else "ok", **model}
    degraded = sorted(name for name, check in checks.items() if check["status"] == "degraded")
    body = {
        "status": ("degraded" if degraded else "ready") if healthy else "not_ready",
        "degraded": degraded,
        "model_version": model["version"],
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


def _redis_check(url: str) -> dict[str, Any]:
    """Redis answers a PING; when it does not, the service runs on without it (rate limits
    per worker in memory, the list cache per worker): degraded, still ready."""
    client = fast_client(url, timeout=0.5)
    try:
        client.ping()
    except Exception as exc:  # redis-py raises many kinds; any means unreachable
        return {
            "status": "degraded",
            "error": type(exc).__name__,
            "detail": "Redis is unreachable: rate limits and the list cache run per worker in "
            "memory and activations arrive by polling until it is back; still serving",
        }
    finally:
        client.close()
    return {"status": "ok"}
