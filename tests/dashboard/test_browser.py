"""The dashboard in a real browser (Debian's chromium through Playwright) against a real gateway process.

Requests reach the gateway through the openai and portkey-ai SDKs and a scripted fake upstream; each test
tags what it sends (a model or user of its own) so that it reads back exactly those. Screenshots of every
page go to tmp/artefacts/dashboard/.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.dashboard.browser import shot
from tests.dashboard.conftest import ADMIN, sign_in
from tests.fakes.upstream import Reply

pytestmark = pytest.mark.timeout(180)
SECRET = "Bearer sk-dashboard-secret-5f1e"


@pytest.fixture(scope="module")
def private_llm(admin, gw, llm):
    """A catalog provider on the fake upstream, registered through the admin API."""
    response = admin.post("/providers", json={"slug": "dash-llm", "custom_host": llm.v1,
                                              "headers": {"Authorization": SECRET}})
    assert response.status_code == 201, response.text
    return "@dash-llm"


def sdk(gw, slug: str, user: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=gw.v1, max_retries=0,
                         default_headers={"x-portkey-provider": slug, "x-portkey-metadata": f'{{"_user": "{user}"}}'})


def wait_for_rows(page, selector: str, count: int, seconds: float = 20.0) -> None:
    """Click Apply until the list shows ``count`` rows: the log is written off the request path."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page.click("#apply-filters")
        page.wait_for_function("() => document.getElementById('log-status').textContent !== 'Loading…'")
        if page.locator(selector).count() == count:
            return
        time.sleep(0.3)
    assert page.locator(selector).count() == count


def test_sign_in_and_an_sdk_request_appears_with_its_body(page, gw, private_llm):
    user = f"u-{uuid.uuid4().hex[:8]}"
    question = f"Explain quantum computing in simple terms ({user})"
    portkey = Portkey(base_url=gw.v1, api_key="unused", provider=private_llm, metadata={"_user": user})
    portkey.chat.completions.create(model="llama-3-8b", messages=[{"role": "user", "content": question}])
    sign_in(page)
    page.fill("input[name=user]", user)
    wait_for_rows(page, "#log-rows tr", 1)
    row = page.locator("#log-rows tr").first
    assert row.locator("td").nth(1).inner_text() == "200"
    assert row.locator("td").nth(2).inner_text() == private_llm
    row.click()
    page.wait_for_selector("#request-body")
    assert question in page.inner_text("#request-body")
    assert f"echo: {question}" in page.inner_text("#response-body")
    assert "1" in page.inner_text("#log-panel h3:has-text('Attempts')")
    assert SECRET.split()[1] not in page.content()  # the stored credential is never rendered
    shot(page, "logs-panel")


def test_filters_narrow_the_list(page, gw, private_llm, llm):
    run = uuid.uuid4().hex[:8]
    for model in ("model-a", "model-a", "model-b"):
        sdk(gw, private_llm, f"run-{run}").chat.completions.create(model=f"{model}-{run}", messages=[{"role": "user", "content": "hi"}])
    llm.push(Reply(status=500, json={"error": {"message": "boom"}}))
    with pytest.raises(openai.InternalServerError):
        sdk(gw, private_llm, f"run-{run}").chat.completions.create(model=f"model-b-{run}", messages=[{"role": "user", "content": "hi"}])
    sign_in(page)
    page.fill("input[name=user]", f"run-{run}")
    wait_for_rows(page, "#log-rows tr", 4)
    page.fill("input[name=model]", f"model-a-{run}")
    wait_for_rows(page, "#log-rows tr", 2)
    assert {page.locator("#log-rows tr td:nth-child(4)").nth(i).inner_text() for i in range(2)} == {f"model-a-{run}"}
    shot(page, "logs-filtered")
    page.fill("input[name=model]", "")
    page.select_option("select[name=status]", "error")
    wait_for_rows(page, "#log-rows tr", 1)
    assert page.locator("#log-rows tr td:nth-child(2)").inner_text() == "500"
    page.select_option("select[name=status]", "")
    page.fill("input[name=metadata]", f"_user=run-{run}")
    wait_for_rows(page, "#log-rows tr", 4)
    page.fill("input[name=provider]", "@no-such-provider")
    wait_for_rows(page, "#log-rows tr", 0)
    shot(page, "logs-empty")


def _ask(gw, slug: str, user: str, model: str) -> None:
    sdk(gw, slug, user).chat.completions.create(model=model, messages=[{"role": "user", "content": model}])


def _tailing(page, gw, slug: str, user: str) -> None:
    """One request of ``user`` shown, filtered to that user, with the live tail on."""
    _ask(gw, slug, user, "first")
    sign_in(page)
    page.fill("input[name=user]", user)
    page.click("#apply-filters")
    wait_for_rows(page, "#log-rows tr", 1)
    page.check("#live-tail")


def _until_rows(page, count: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('#log-rows tr').length === {count}", timeout=20_000)


def test_live_tail_shows_new_requests_without_a_reload(page, gw, private_llm):
    user = f"tail-{uuid.uuid4().hex[:8]}"
    _tailing(page, gw, private_llm, user)
    _ask(gw, private_llm, user, "second")
    _until_rows(page, 2)
    assert page.locator("#log-rows tr.fresh").count() == 1


def test_live_tail_follows_the_filters_applied_not_those_typed(page, gw, private_llm):
    # The tail read the form as it was being edited: rows of a user typed but never applied joined the list,
    # under a status line that still counted the applied ones.
    user, typed = f"kept-{uuid.uuid4().hex[:8]}", f"typed-{uuid.uuid4().hex[:8]}"
    _tailing(page, gw, private_llm, user)
    page.fill("input[name=user]", typed)  # not applied
    _ask(gw, private_llm, typed, "not-mine")
    _ask(gw, private_llm, user, "mine")
    _until_rows(page, 2)
    time.sleep(2.5)  # more polls: the typed user's row must not come
    assert [page.locator("#log-rows tr td:nth-child(4)").nth(i).inner_text() for i in range(2)] == ["mine", "first"]
    assert page.locator("#log-rows tr").count() == 2 and page.inner_text("#log-status") == "2 requests shown"


def test_live_tail_shows_a_request_that_ends_after_a_newer_one(page, gw, private_llm, llm):
    # A row is written when its request ends, under the time it started: the tail asked only for rows newer
    # than the newest shown, and a stream that began before a quick request never appeared.
    user = f"late-{uuid.uuid4().hex[:8]}"
    _tailing(page, gw, private_llm, user)
    llm.push(Reply(delay=3.0))  # the slow one starts first ...
    slow = threading.Thread(target=_ask, args=(gw, private_llm, user, "slow"), daemon=True)
    slow.start()
    time.sleep(0.5)
    _ask(gw, private_llm, user, "quick")
    _until_rows(page, 2)
    slow.join(15)  # ... and is written after the quick one has been shown
    _until_rows(page, 3)
    shown = [page.locator("#log-rows tr td:nth-child(4)").nth(i).inner_text() for i in range(3)]
    assert shown == ["quick", "slow", "first"]  # where each started


def test_analytics_chart_renders_with_data(page, gw, private_llm):
    for i in range(3):
        sdk(gw, private_llm, "chart-user").chat.completions.create(model=f"chart-{i}", messages=[{"role": "user", "content": "x"}])
    sign_in(page)
    page.goto("/dashboard/#/analytics")
    page.wait_for_selector("#charts svg rect.bar")
    deadline = time.monotonic() + 20
    while int(page.inner_text("#totals .stat-value >> nth=0").replace(",", "")) < 3 and time.monotonic() < deadline:
        page.click("#analytics-filters button")
        time.sleep(0.5)
    assert int(page.inner_text("#totals .stat-value >> nth=0").replace(",", "")) >= 3
    assert page.locator("#charts svg rect.bar").count() >= 2  # requests and tokens, at least one bar each
    assert page.locator("#charts svg path.line").count() >= 3  # p50, p95, p99
    page.select_option("select[name=group]", "provider_slug")
    page.wait_for_selector(f"#group-charts svg text:has-text('{private_llm}')")
    shot(page, "analytics")


def test_add_provider_through_the_form_then_serve_an_sdk_request(page, gw, llm):
    slug = f"form-{uuid.uuid4().hex[:6]}"
    sign_in(page)
    page.goto("/dashboard/#/catalog")
    page.click("#add-provider")
    assert page.is_checked("#private-toggle")
    page.select_option("#spec", "openai")
    page.fill("#custom-host", llm.v1)
    page.fill(".header-row .header-name", "Authorization")
    page.fill(".header-row .header-value", "Bearer form-secret-77aa")
    page.click("#add-header")
    page.locator(".header-row .header-name").nth(1).fill("x-org-id")
    page.locator(".header-row .header-value").nth(1).fill("org-42")
    page.fill("#slug", slug)
    page.click("#save-provider")
    page.wait_for_selector(f"tr[data-slug='{slug}']")
    assert "form-secret-77aa" not in page.content()
    assert "Authorization: Bearer for…77aa" in page.inner_text(f"tr[data-slug='{slug}']")  # the masked form
    shot(page, "catalog")
    llm.reset()
    answer = sdk(gw, f"@{slug}", "form-user").chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content == "echo: hello"
    assert llm.last.headers["Authorization"] == "Bearer form-secret-77aa"
    assert llm.last.headers["x-org-id"] == "org-42"
    page.click(f"tr[data-slug='{slug}'] button:has-text('Test connection')")
    page.wait_for_selector("#catalog-status.ok-text:has-text('answered')")
    assert page.inner_text("#catalog-status").startswith(f"{llm.v1}/models answered 200")


def test_add_provider_refused_by_the_ssrf_guard_shows_the_reason(page):
    sign_in(page)
    page.goto("/dashboard/#/catalog")
    page.click("#add-provider")
    page.fill("#custom-host", "http://169.254.169.254/latest")
    page.fill("#slug", "metadata-grab")
    page.click("#save-provider")
    page.wait_for_selector("#provider-error:not(:empty)")
    message = page.inner_text("#provider-error")
    assert message.startswith("custom_host:") and "169.254.169.254" in message
    assert page.locator("tr[data-slug='metadata-grab']").count() == 0


def test_a_config_with_a_typo_shows_the_path_of_the_error(page):
    sign_in(page)
    page.goto("/dashboard/#/configs")
    page.click("#new-config")
    page.fill("#config-text", '{"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai"}, '
                              '{"provider": "openai", "retyr": {"attempts": 2}}]}')
    page.wait_for_selector("#config-problems li:has-text('retyr')")
    assert page.inner_text("#config-problems") == "$.targets[1].retyr Unrecognized key: 'retyr'"
    shot(page, "configs")
    page.fill("#config-text", '{"retry": {"attempts": 2}, "provider": "openai"}')
    page.wait_for_selector("#config-problems li.ok-text")
    page.fill("#config-id", f"cfg-{uuid.uuid4().hex[:6]}")
    page.click("#save-config")
    page.wait_for_selector("#configs-status:has-text('Saved')")


def test_sign_out_ends_the_session(page, gw):
    sign_in(page)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sg_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    shot(page, "signed-out")
    # The old cookie, replayed by hand, is refused: the session is gone on the server, not only in the page.
    response = httpx.get(f"{gw.url}/dashboard/api/logs", cookies={"sg_dashboard": cookie["value"]}, trust_env=False)
    assert response.status_code == 401
    page.reload()
    page.wait_for_selector("#signin:not([hidden])")


def test_a_wrong_token_is_refused_in_the_page(page):
    page.goto("/dashboard/")
    page.fill("#token", ADMIN + "x")
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:not(:empty)")
    assert page.inner_text("#signin-error") == "Sign-in refused: that token is not valid here"
    assert page.is_hidden("#shell")
    shot(page, "signin")


def test_edit_then_delete_a_provider(page, gw, admin, llm):
    slug = f"edit-{uuid.uuid4().hex[:6]}"
    assert admin.post("/providers", json={"slug": slug, "custom_host": llm.v1,
                                          "headers": {"Authorization": "Bearer keep-me-1234"}}).status_code == 201
    sign_in(page)
    page.goto("/dashboard/#/catalog")
    page.click(f"tr[data-slug='{slug}'] button:has-text('Edit')")
    assert page.input_value(".header-row .header-value") == ""  # a stored value is never sent to the page
    page.fill("#models", "llama-3-8b, qwen2-7b")
    page.click("#save-provider")
    page.wait_for_selector(f"tr[data-slug='{slug}'] td:has-text('llama-3-8b, qwen2-7b')")
    stored = admin.get(f"/providers/{slug}").json()
    assert stored["models"] == ["llama-3-8b", "qwen2-7b"]
    assert list(stored["headers"]) == ["Authorization"]
    llm.reset()  # the header left empty in the form is kept, not erased
    sdk(gw, f"@{slug}", "edit-user").chat.completions.create(model="qwen2-7b", messages=[{"role": "user", "content": "x"}])
    assert llm.last.headers["Authorization"] == "Bearer keep-me-1234"
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"tr[data-slug='{slug}'] button:has-text('Delete')")
    page.wait_for_selector(f"tr[data-slug='{slug}']", state="detached")
    assert admin.get(f"/providers/{slug}").status_code == 404
