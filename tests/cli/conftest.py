"""The environment every CLI test runs `bookrec` with."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BOOKREC_VAR_DIR": str(tmp_path / "var"),
        "BOOKREC_LOG_FORMAT": "console",
        "COLUMNS": "200",  # a wide terminal: rich never wraps tables or messages with long paths
    }
