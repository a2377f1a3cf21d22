"""WCAG 2.1 A and AA rules that a machine can check (axe-core 4.12, from the pinned
`axe-playwright-python`), on every main page: labels, names, contrast, landmarks, lang."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import SHAWSHANK_BOOK_ID, Site
from tests.browser.test_web_app import browsing, log_in, register

pytestmark = pytest.mark.browser

WCAG_21_AA = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
READER_PAGES = [
    "/",
    "/search?q=harry",
    f"/books/{SHAWSHANK_BOOK_ID}",
    "/for-you",
    "/shelf",
    "/account",
    "/no-such-page",
]
ADMIN_PAGES = [
    "/admin",
    "/admin/models",
    "/admin/jobs",
    "/admin/experiments",
    "/admin/api-keys",
    "/admin/models/1/activate",
]


def violations(page: Any, path: str) -> list[str]:
    page.goto(path)
    results = Axe().run(page, options=WCAG_21_AA)
    return [
        f"{path}: {v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:3])
        for v in results.response["violations"]
    ]


def test_the_pages_pass_the_wcag_21_aa_rules_axe_checks(browser: Any, site: Site) -> None:
    found: list[str] = []
    with browsing(browser, site) as (page, watch):
        for path in ("/login", "/register"):
            found += violations(page, path)
        register(page, f"a11y-{uuid.uuid4().hex[:8]}@example.com")
        for path in READER_PAGES:
            found += violations(page, path)
        watch.console_errors[:] = [e for e in watch.console_errors if "status of 404" not in e]
    with browsing(browser, site) as (page, _watch):
        log_in(page, site.admin_email, site.admin_password)
        for path in ADMIN_PAGES:
            found += violations(page, path)
    assert found == []


def test_keyboard_focus_is_always_visible(browser: Any, site: Site, screenshots: Any) -> None:
    """Tab through a book page: the skip link comes first and every stop shows an outline."""
    with browsing(browser, site) as (page, _watch):
        register(page, f"keys-{uuid.uuid4().hex[:8]}@example.com")
        page.goto(f"/books/{SHAWSHANK_BOOK_ID}")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.screenshot(path=str(screenshots / "keyboard-skip-link.png"))
        for _ in range(14):
            page.keyboard.press("Tab")
            outline = page.evaluate(
                "[getComputedStyle(document.activeElement).outlineStyle,"
                " getComputedStyle(document.activeElement).outlineWidth,"
                " document.activeElement.outerHTML.slice(0, 80)]"
            )
            assert outline[0] != "none" and outline[1] != "0px", outline
        page.screenshot(path=str(screenshots / "keyboard-focus.png"))
