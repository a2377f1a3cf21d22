"""The layering rules of STYLE.md (import-linter, and no cycle between packages), one place
that registers every ORM model, and schema drift."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from bookrec.schema import Base, mapped_name

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is not installed"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": mapped_name}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter (nothing imported yet); fail with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def test_api_workers_do_not_load_file_import_libraries() -> None:
    """Every `bookrec serve` worker imports the CLI (multiprocessing's spawn re-runs the
    `bookrec` script) and the app: neither may pull in pyarrow or scikit-learn, tens of MB
    of resident memory per worker that serving never uses."""
    code = (
        "import sys, bookrec.cli.main, bookrec.api.server\n"
        "bookrec.api.server.served_app()\n"
        "print(sorted(m for m in ('pyarrow', 'sklearn', 'pandas') if m in sys.modules))\n"
    )
    assert fresh_python(code).stdout.strip().splitlines()[-1] == "[]"


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """Every `bookrec` command, `--help` included, pays for what the CLI imports before it
    runs: SQLAlchemy, pydantic, numpy and a Markdown parser are loaded by the commands that
    use them, never at start-up (benchmarks/cli_startup.py measures the time)."""
    code = (
        "import sys, bookrec.cli.main\n"
        "heavy = ('sqlalchemy', 'pydantic', 'numpy', 'scipy', 'markdown_it',"
        " 'importlib.metadata')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert fresh_python(code).stdout.strip().splitlines()[-1] == "[]"


def test_no_two_top_level_packages_import_each_other_even_in_a_loop() -> None:
    """Every import counts, function-local ones too: the packages form no cycle (the layers
    contract orders them; this says the same without it)."""
    import grimp

    graph = grimp.build_graph("bookrec")
    imports: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            source, target = module.split(".")[:2], imported.split(".")[:2]
            if len(source) == len(target) == 2 and source != target:
                imports.setdefault(source[1], set()).add(target[1])
    finished: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        if package in path:
            raise AssertionError(f"import cycle: {' -> '.join((*path, package))}")
        if package not in finished:
            for imported in sorted(imports.get(package, ())):
                visit(imported, (*path, package))
            finished.add(package)

    for package in sorted(imports):
        visit(package, ())
    assert {"api", "cli", "serving", "readers"} <= set(imports)  # the graph was read


MODEL_MODULES = (
    "bookrec.accounts.api_keys",
    "bookrec.accounts.audit",
    "bookrec.accounts.models",
    "bookrec.catalog.models",
    "bookrec.datasets.models",
    "bookrec.experiments.models",
    "bookrec.jobs.models",
    "bookrec.model_registry.models",
    "bookrec.readers.models",
)


def _tables_after(code: str) -> set[str]:
    """The tables `Base.metadata` holds in a fresh interpreter after `code`."""
    run = fresh_python(f"{code}\nimport json\nprint(json.dumps(list(Base.metadata.tables)))")
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


def test_the_schema_package_registers_every_model() -> None:
    """`bookrec.schema` alone brings in every table that any module of bookrec defines."""
    everything = "\n".join(f"import {module}" for module in MODEL_MODULES)
    every_table = _tables_after(f"{everything}\nfrom bookrec.db.base import Base")
    assert _tables_after("from bookrec.schema import Base") == every_table
    assert set(Base.metadata.tables) == every_table
    defined = set()
    for path in (ROOT / "src" / "bookrec").rglob("*.py"):
        if "__tablename__" in path.read_text():
            defined.add(".".join(path.relative_to(ROOT / "src").with_suffix("").parts))
    assert defined == set(MODEL_MODULES)


@pytest.mark.parametrize("module", MODEL_MODULES)
def test_any_model_module_alone_brings_what_its_keys_point_at(module: str) -> None:
    """A process that imports one model module can configure its mappers: every table a
    foreign key names is there (the keys name their target classes)."""
    code = (
        f"import {module}\n"
        "from sqlalchemy.orm import configure_mappers\n"
        "from bookrec.db.base import Base\n"
        "configure_mappers()\n"
        "for table in Base.metadata.tables.values():\n"
        "    for key in table.foreign_keys:\n"
        "        key.column  # resolves the target, or raises NoReferencedTableError\n"
        "print('ok')"
    )
    assert fresh_python(code).stdout.strip() == "ok"


def test_the_app_factory_changes_nothing_process_wide() -> None:
    """Tuning (BLAS threads, malloc) and logging set-up belong to `bookrec serve`'s workers
    (`api.server.served_app`), not to `create_app`, which tests and tools call too."""
    code = (
        "import json, structlog\n"
        "from threadpoolctl import threadpool_info\n"
        "def snapshot():\n"
        "    threads = sorted((i['internal_api'], i['num_threads']) for i in threadpool_info())\n"
        "    return json.dumps([threads, repr(structlog.get_config()['processors'])])\n"
        "from bookrec.api.app import create_app\n"
        "from bookrec.api.server import served_app\n"
        "before = snapshot()  # with every library loaded\n"
        "create_app()\n"
        "assert snapshot() == before, 'create_app changed the process'\n"
        "served_app()\n"
        "assert snapshot() != before, 'served_app tuned nothing'\n"
        "print('ok')\n"
    )
    assert fresh_python(code).stdout.strip().endswith("ok")
