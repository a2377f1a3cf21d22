"""The web app in headless Chromium: a reader's journey, an admin's, and who may see what."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SHAWSHANK_BOOK_ID, Site, Watch

pytestmark = pytest.mark.browser

READER_PASSWORD = "quiet orange lighthouse 42"


@contextmanager
def browsing(
    browser: Any, site: Site, *, width: int = 1280, height: int = 900
) -> Iterator[tuple[Any, Watch]]:
    """A fresh browser context (no cookies) and one page, watched for foreign requests and
    console errors; both must stay empty."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=site.base)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = Watch(site.host)

    def on_request(request: Any) -> None:
        if request.url.startswith(("data:", "blob:")):
            return
        if urlsplit(request.url).netloc != site.host:
            watch.foreign_requests.append(request.url)

    page.on("request", on_request)
    page.on(
        "console",
        lambda message: (
            watch.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: watch.console_errors.append(str(error)))
    try:
        yield page, watch
        watch.check()
    finally:
        context.close()


def shot(page: Any, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def register(page: Any, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(READER_PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/for-you"))


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def listed(page: Any) -> list[tuple[str, str]]:
    """The books of a /for-you page: (link, reasons) of each <article>."""
    books = []
    for article in page.locator("article").all():
        link = article.locator("h3 a").get_attribute("href") or ""
        reasons = article.locator(".reasons li").all_inner_texts()
        books.append((link, " / ".join(reason.strip() for reason in reasons)))
    return books


def test_a_reader_registers_searches_rates_shelves_and_gets_recommendations(
    browser: Any, site: Site, screenshots: Path
) -> None:
    with browsing(browser, site) as (page, _watch):
        page.goto("/")
        shot(page, screenshots, "home-anonymous")
        register(page, f"reader-{uuid.uuid4().hex[:8]}@example.com")
        before = listed(page)
        shot(page, screenshots, "for-you-new-reader")
        assert page.locator("p.empty").get_by_text("Rate a few books").is_visible()

        page.goto("/search?q=shawshank")
        shot(page, screenshots, "search-shawshank")
        page.get_by_role("link", name=re.compile("Shawshank")).first.click()
        page.wait_for_url(f"**/books/{SHAWSHANK_BOOK_ID}")
        page.get_by_role("button", name="Rate 5 stars").click()
        page.wait_for_url(re.compile(r"notice=rated"))
        assert "You rated it 5 stars" in page.locator("#rating-status").inner_text()
        page.get_by_role("button", name="Add to shelf").click()
        page.wait_for_url(re.compile(r"notice=shelved"))
        shot(page, screenshots, "book-shawshank-rated")
        similar = page.locator("section:has(#similar-h) article")
        assert similar.count() >= 3
        assert all(reasons for reasons in similar.locator(".reasons").all_inner_texts())

        page.goto("/shelf")
        assert page.get_by_role("link", name=re.compile("Shawshank")).count() >= 1
        shot(page, screenshots, "shelf")

        page.goto("/for-you")
        shot(page, screenshots, "for-you-after-rating")
        after = listed(page)
        assert len(after) >= 5
        assert all(reasons for _, reasons in after), after
        assert f"/books/{SHAWSHANK_BOOK_ID}" not in [link for link, _ in after]
        assert after != before, "rating a book did not change the recommendations"

        page.get_by_label("Variety").select_option(label="Most variety")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url(re.compile(r"diversity=0.9"))
        assert page.locator("article").count() >= 5

        page.goto("/account")
        shot(page, screenshots, "account")


def test_pages_fit_a_phone_width_screen(browser: Any, site: Site, screenshots: Path) -> None:
    with browsing(browser, site, width=390, height=844) as (page, _watch):
        register(page, f"phone-{uuid.uuid4().hex[:8]}@example.com")
        for path, name in (
            ("/", "phone-home"),
            ("/search?q=harry", "phone-search"),
            (f"/books/{SHAWSHANK_BOOK_ID}", "phone-book"),
            ("/for-you", "phone-for-you"),
        ):
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide on a 390px screen"
            shot(page, screenshots, name)


def test_an_admin_trains_activates_and_rolls_back(
    browser: Any, site: Site, screenshots: Path
) -> None:
    with browsing(browser, site) as (page, _watch):
        log_in(page, site.admin_email, site.admin_password)
        page.goto("/admin")
        shot(page, screenshots, "admin-overview")
        page.goto("/admin/models")
        assert page.locator("#active-version").inner_text() == "version 2"
        assert page.locator("svg.metrics-chart polyline").count() >= 1
        shot(page, screenshots, "admin-models")

        page.goto("/admin/jobs")
        page.get_by_label("Algorithm").select_option("popularity")
        page.get_by_label("Promote even if the evaluation gate refuses it").check()
        page.get_by_role("button", name="Start training").click()
        page.wait_for_url(re.compile(r"/admin/jobs/\d+"))
        shot(page, screenshots, "admin-job-started")
        # static/app.js polls the job, moves the bar, and reloads the page once it has finished
        seen: list[float] = []
        deadline = time.monotonic() + 180
        status = page.locator("[data-field=status]")
        while time.monotonic() < deadline:
            shown = status.inner_text()  # read once: the job may finish between two reads
            if shown == "succeeded":
                break
            assert shown in ("queued", "running"), shown
            seen.append(float(page.locator("#job-progress").get_attribute("value") or 0))
            page.wait_for_timeout(100)
        expect(status).to_have_text("succeeded")
        assert float(page.locator("#job-progress").get_attribute("value") or 0) == 100
        assert seen == sorted(seen), "the progress bar went backwards"
        shot(page, screenshots, "admin-job-finished")

        page.goto("/admin/models")
        assert page.locator("#active-version").inner_text() == "version 3"
        page.get_by_role("link", name="Activate version 1").click()
        shot(page, screenshots, "admin-confirm-activate")
        page.get_by_role("button", name="Activate version 1").click()
        page.wait_for_url(re.compile(r"notice=activated"))
        assert page.locator("#active-version").inner_text() == "version 1"

        page.get_by_role("link", name="Roll back…").click()
        page.get_by_role("button", name="Roll back").click()
        page.wait_for_url(re.compile(r"notice=rolled-back"))
        assert page.locator("#active-version").inner_text() == "version 3"
        shot(page, screenshots, "admin-models-after-rollback")

        page.goto("/admin/jobs")
        shot(page, screenshots, "admin-jobs")

        page.goto("/admin/experiments")
        page.get_by_label("Name").fill("popular-vs-personal")
        page.get_by_label("Treatment answers with").select_option("popular")
        page.get_by_role("button", name="Create experiment").click()
        page.wait_for_url(re.compile(r"notice=experiment-created"))
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r"notice=experiment-started"))
        assert page.get_by_role("row", name=re.compile("^treatment 0")).is_visible()
        assert page.get_by_role("row", name=re.compile("^treatment vs control")).is_visible()
        shot(page, screenshots, "admin-experiment-running")
        page.get_by_role("button", name="Stop").click()
        page.wait_for_url(re.compile(r"notice=experiment-stopped"))

        page.goto("/admin/api-keys")
        page.get_by_label("Name").fill("bookshop backend")
        page.get_by_role("button", name="Create key").click()
        assert page.get_by_label("New key").input_value().startswith("brk_")
        shot(page, screenshots, "admin-api-keys")


def test_readers_are_refused_admin_pages_and_strangers_sent_to_log_in(
    browser: Any, site: Site, screenshots: Path
) -> None:
    with browsing(browser, site) as (page, watch):
        response = page.goto("/admin/models")
        assert urlsplit(page.url).path == "/login"
        assert "next=/admin/models" in page.url
        assert response is not None

        register(page, f"curious-{uuid.uuid4().hex[:8]}@example.com")
        response = page.goto("/admin/models")
        assert response is not None and response.status == 403
        assert page.get_by_role("heading", name="Forbidden").is_visible()
        shot(page, screenshots, "reader-forbidden")
        response = page.goto("/no-such-page")
        assert response is not None and response.status == 404
        shot(page, screenshots, "not-found")
        # the browser reports a 403 or 404 document in the console: that is what they are
        watch.console_errors[:] = [
            e for e in watch.console_errors if not re.search(r"status of 40[34]", e)
        ]


def test_the_api_docs_work_without_the_internet(
    browser: Any, site: Site, screenshots: Path
) -> None:
    with browsing(browser, site) as (page, _watch):
        page.goto("/docs")
        page.locator(".swagger-ui .info .title").wait_for()
        assert "bookrec" in page.locator(".swagger-ui .info .title").inner_text()
        assert page.locator(".opblock").count() > 10
        shot(page, screenshots, "docs")
