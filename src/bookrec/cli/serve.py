"""`bookrec serve`: the HTTP API with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import typer

from bookrec.cli.common import settings


def serve(
    host: str = typer.Option(None, help="Bind address (default BOOKREC_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default BOOKREC_PORT or 8000)"),
    workers: int = typer.Option(
        None, min=1, max=64, help="Worker processes (default BOOKREC_WORKERS or 1)"
    ),
) -> None:
    """Serve the API and its docs (/docs)."""
    import uvicorn

    config = settings()
    uvicorn.run(
        "bookrec.api.app:create_app",
        factory=True,
        host=host or config.host,
        port=port or config.port,
        workers=workers or config.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
