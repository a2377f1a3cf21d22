"""The layering rules of STYLE.md, checked by import-linter, and schema drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from bookrec.db.models import Base

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is not installed"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_api_workers_do_not_load_file_import_libraries() -> None:
    """Every `bookrec serve` worker imports the CLI (multiprocessing's spawn re-runs the
    `bookrec` script) and the app: neither may pull in pyarrow or scikit-learn, tens of MB
    of resident memory per worker that serving never uses."""
    code = (
        "import sys, bookrec.cli.main, bookrec.api.app\n"
        "bookrec.api.app.create_app()\n"
        "print(sorted(m for m in ('pyarrow', 'sklearn', 'pandas') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
