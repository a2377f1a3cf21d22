"""`GET /metrics`: Prometheus' text format, summed over every worker of the server.

Not rate limited (Prometheus scrapes on its own schedule) and not public: only clients in
`BOOKREC_METRICS_ALLOW` (loopback and private networks by default) may read it, and, when
`BOOKREC_METRICS_TOKEN` is set, only with that bearer token.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from bookrec.api.deps import state_of
from bookrec.config import Settings
from bookrec.errors import Forbidden, Unauthorized
from bookrec.observability.metrics import CONTENT_TYPE, exposition

router = APIRouter(tags=["ops"])


def check_access(settings: Settings, client_host: str | None, authorization: str) -> None:
    """Refuse (403) a client outside the allowed networks, then (401) a missing or wrong
    token when one is required."""
    try:
        address = ip_address(client_host or "")
    except ValueError:
        address = None
    if address is not None and address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address is None or not any(address in network for network in settings.metrics_allow):
        raise Forbidden(
            f"/metrics is not open to {client_host or 'this client'}: "
            "BOOKREC_METRICS_ALLOW names the networks that may read it"
        )
    token = settings.metrics_token
    if token is None:
        return
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    ):
        raise Unauthorized("/metrics requires the bearer token set in BOOKREC_METRICS_TOKEN")


@router.get(
    "/metrics",
    summary="Prometheus metrics of every worker (restricted: BOOKREC_METRICS_ALLOW/TOKEN)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    include_in_schema=False,
)
async def metrics(request: Request) -> Response:
    settings = state_of(request).settings
    check_access(
        settings,
        request.client.host if request.client else None,
        request.headers.get("authorization", ""),
    )
    body = await run_in_threadpool(exposition)  # reads every worker's files
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
