"""One gateway process and one fake upstream for the dashboard's tests, a chromium for the browser ones, and
the helpers their workspace worlds share (keys, requests through the openai SDK, waiting for their logs)."""

from __future__ import annotations

import os
import time

import httpx
import openai
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


def sdk(gw, key: str, slug: str, user: str) -> openai.OpenAI:
    """The openai SDK as a workspace's user: its key, a catalog provider, the user in the metadata."""
    return openai.OpenAI(api_key=key, base_url=gw.v1, max_retries=0,
                         default_headers={"x-portkey-provider": slug, "x-portkey-metadata": f'{{"_user": "{user}"}}'})


def ask(gw, key: str, slug: str, user: str, max_tokens: int | None = None) -> None:
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    sdk(gw, key, slug, user).chat.completions.create(model="llama-3-8b",
                                                     messages=[{"role": "user", "content": "hello"}], **extra)


def new_key(admin, workspace: str, scopes: list[str], name: str) -> dict:
    response = admin.post("/api-keys/workspace/service", json={"name": name, "workspace_id": workspace,
                                                               "scopes": scopes})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_logs(admin, users: list[str], each: int, seconds: float = 20) -> None:
    """Until every user has ``each`` records: the log is written off the request path."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(len(admin.get("/logs", params={"user": user}).json()["data"]) == each for user in users):
            return
        time.sleep(0.2)
