"""/docs: Swagger UI from this server's own files, so it works on a machine with no internet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookrec.web.rendering import DOCS_CSP, finish, templates

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def api_docs(request: Request) -> Response:
    response = templates.TemplateResponse(request, "docs.html", {"openapi_url": "/openapi.json"})
    return finish(request, response, csp=DOCS_CSP)
