"""One gateway process and one fake upstream for the dashboard's tests, a chromium for the browser ones."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.dashboard.browser import launch
from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess

ADMIN = "dashboard-admin-token-0123456789"


@pytest.fixture(scope="module")
def llm():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("dashboard"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(gw):
    with httpx.Client(base_url=f"{gw.url}/admin/api", headers={"Authorization": f"Bearer {ADMIN}"},
                      timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, gw):
    context = browser.new_context(viewport={"width": 1360, "height": 860}, base_url=gw.url)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    yield tab
    context.close()
    # A CSP violation or a script error shows up here: the page must run clean. (A refused API call is
    # logged by the browser too; the tests check those answers themselves.)
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []


def sign_in(page, token: str = ADMIN) -> None:
    page.goto("/dashboard/")
    page.fill("#token", token)
    page.click("#signin-button")
    page.wait_for_selector("#shell:not([hidden])")
