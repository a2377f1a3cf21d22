"""A real `bookrec serve` with a small catalog (including The Shawshank Redemption), two
trained model versions and an admin, and headless Chromium (Debian's, `make chromium`)
driven by Playwright to use it as a person would.

Every page checks that no request leaves the server and no console error appears.
Screenshots go to var/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bookrec.accounts import service as accounts
from bookrec.datasets import synth
from bookrec.db.engine import make_engine
from bookrec.db.session import unit_of_work
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.schema.migrate import upgrade
from bookrec.training.service import train
from tests.api.conftest import make_settings
from tests.fixtures.database import services_required
from tests.fixtures.datasets import DEMO_CATALOG, write_small_dataset
from tests.ops.servers import Server, serving

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SHAWSHANK_BOOK_ID = 8976
ADMIN_EMAIL = "operator@bookrec.example"
ADMIN_PASSWORD = "violet harbour kettle 2026"


@dataclass
class Site:
    """The running server, and who may log in to it."""

    base: str
    admin_email: str
    admin_password: str
    log: Path

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc


def write_catalog(directory: Path) -> Path:
    """The tests' small data set (300 real books, their tags, synthetic ratings) with
    The Shawshank Redemption added to the catalogue before the ratings are made up."""
    write_small_dataset(directory)
    with (DEMO_CATALOG / "books.csv").open(newline="", encoding="utf-8") as source:
        shawshank = next(row for row in csv.reader(source) if row[0] == str(SHAWSHANK_BOOK_ID))
    with (directory / "books.csv").open("a", newline="", encoding="utf-8") as target:
        csv.writer(target).writerow(shawshank)
    catalog = synth.read_catalog(directory)
    config = synth.SynthConfig(readers=200, ratings=6000, seed=11)
    synth.write_csv(synth.generate(catalog, config), directory / "ratings.csv")
    return directory


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not CHROMIUM.is_file():
        message = "Debian's chromium is not installed (`make chromium` installs it)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("web")
    settings = make_settings(f"sqlite:///{root / 'bookrec.sqlite3'}", root / "var")
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    import_directory(engine, write_catalog(root / "data"))
    registry = ModelRegistry(settings.models_dir)
    train(engine, registry, "popularity", settings=settings)
    train(engine, registry, "hybrid", settings=settings, force=True)
    with unit_of_work(engine) as session:
        accounts.register(
            session,
            accounts.Authenticator.of(settings),
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            role="admin",
        )
    engine.dispose()
    server: Server
    with serving(settings, root / "serve.log", workers=1) as server:
        yield Site(server.base, ADMIN_EMAIL, ADMIN_PASSWORD, server.log)


@dataclass
class Watch:
    """What the browser did that a page must not: requests to other hosts, console errors."""

    host: str
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.foreign_requests == [], "requests left the server"
        assert self.console_errors == [], "the console showed errors"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS
