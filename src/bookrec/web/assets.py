"""Static files served from the package: the app's CSS and JS, and Swagger UI for /docs.

URLs carry a digest of the file (`/static/app.css?v=1a2b3c4d5e6f`), so a browser may keep
them a year and still gets a changed file at once. Swagger UI comes from the pinned PyPI
package `swagger-ui-py` (its `static/` folder, Apache-2.0); nothing is fetched at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_PREFIX = "/static"
SWAGGER_PREFIX = "/static/swagger-ui"
#: The Swagger UI files /docs uses (the package also ships an editor we do not serve).
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
IMMUTABLE = "public, max-age=31536000, immutable"


def swagger_ui_dir() -> Path:
    """Where `swagger-ui-py` keeps Swagger UI's files (found without importing the package,
    whose handlers pull in web frameworks we do not use)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """The versioned URL of one of the app's static files."""
    return f"{STATIC_PREFIX}/{name}?v={_digest(STATIC_DIR / name)}"


def swagger_url(name: str) -> str:
    """The versioned URL of one of Swagger UI's files."""
    return f"{SWAGGER_PREFIX}/{name}?v={_digest(swagger_ui_dir() / name)}"


class VersionedStaticFiles(StaticFiles):
    """Static files; a request naming the file's version (`?v=`) may be cached for a year."""

    def __init__(self, directory: Path, allowed: frozenset[str] | None = None) -> None:
        super().__init__(directory=directory)
        self.allowed = allowed

    async def get_response(self, path: str, scope: Scope) -> Response:
        if self.allowed is not None and path not in self.allowed:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        if response.status_code == 200 and b"v=" in scope.get("query_string", b""):
            response.headers["cache-control"] = IMMUTABLE
        return response
