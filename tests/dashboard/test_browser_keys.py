"""API keys in the dashboard, in a real browser (Debian's chromium through Playwright) against a real gateway:
signing in with a key, a workspace key's logs, the API keys page (create with the secret shown once, a
budget and its usage, revoke, then the SDK refused), and refusals without the cookie or the CSRF token.
Screenshots go to tmp/artefacts/dashboard/ (keys.png is the one in docs/img/dashboard-keys.png)."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from tests.dashboard.browser import shot
from tests.dashboard.conftest import ADMIN, ask, new_key, sign_in, wait_for_logs

pytestmark = pytest.mark.timeout(180)
DASH_SCOPES = ["logs.list", "logs.view", "analytics.view", "providers.list", "providers.read", "configs.list",
               "configs.read", "workspace_service_api_keys.*", "completions.write"]


@pytest.fixture(scope="module")
def world(gw, admin, llm):
    spaces = {}
    for name in ("north", "south"):
        space = admin.post("/workspaces", json={"name": name.capitalize()}).json()
        slug = f"{name}-llm"
        assert admin.post("/providers", json={"slug": slug, "custom_host": llm.v1, "workspace_id": space["id"]}
                          ).status_code == 201
        infer = new_key(admin, space["id"], ["completions.write"], f"{name}-inference")
        dash = new_key(admin, space["id"], DASH_SCOPES, f"{name}-dashboard")
        user = f"{name}-user-{uuid.uuid4().hex[:6]}"
        for _ in range(2):
            ask(gw, infer["key"], f"@{slug}", user)
        spaces[name] = {"id": space["id"], "slug": slug, "infer": infer, "dash": dash, "user": user}
    wait_for_logs(admin, [s["user"] for s in spaces.values()], each=2)
    return spaces


def test_sign_in_with_an_api_key_and_see_only_its_workspaces_logs(page, world):
    north, south = world["north"], world["south"]
    sign_in(page, north["dash"]["key"])
    assert page.inner_text("#who") == (f"Signed in as north-dashboard ({north['dash']['key'][:10]}…) "
                                       "· workspace north")
    page.wait_for_function("() => document.getElementById('log-status').textContent.includes('requests shown')")
    users = set(page.locator("#log-rows tr td:nth-child(9)").all_inner_texts())
    assert users == {north["user"]}
    assert page.locator("input[name=workspace_id]").count() == 0  # nothing to choose: its workspace only
    page.fill("input[name=user]", south["user"])
    page.click("#apply-filters")
    page.wait_for_function("() => document.getElementById('log-status').textContent === 'No requests match these filters.'")
    assert south["user"] not in page.content() and north["dash"]["key"] not in page.content()
    # Pages whose scopes the key lacks are shown disabled; the keys page is open to it.
    assert "nav-disabled" not in (page.get_attribute("a[data-page=keys]", "class") or "")
    shot(page, "logs-workspace-key")


def test_a_page_the_key_has_no_scope_for_is_disabled(page, gw, admin, world):
    only_logs = new_key(admin, world["north"]["id"], ["logs.list"], "logs-only")
    sign_in(page, only_logs["key"])
    for name in ("analytics", "catalog", "configs", "keys"):
        assert "nav-disabled" in page.get_attribute(f"a[data-page={name}]", "class")
    page.goto("/dashboard/#/keys")  # typed by hand: the logs page opens instead
    page.wait_for_selector("#log-filters")


def test_create_a_key_see_the_secret_once_then_revoke_it(page, gw, world):
    north = world["north"]
    sign_in(page, north["dash"]["key"])
    page.goto("/dashboard/#/keys")
    page.wait_for_selector(f"tr[data-key='{north['infer']['id']}']")
    page.click("#create-key")
    page.fill("#key-name", "from-the-browser")
    assert page.is_checked("#key-scopes input[value='completions.write']")
    assert page.is_disabled("#key-scopes input[value='workspace_service_api_keys.create']") is False
    page.click("#add-rate")
    page.fill(".rate-row .rate-value", "60")
    page.select_option("#budget-type", "tokens")
    page.fill("#budget-limit", "5000")
    page.click("#save-key")
    page.wait_for_selector("#new-key-secret")
    secret = page.inner_text("#new-key-secret")
    assert secret.startswith("sg-") and len(secret) == 46
    row = page.locator("tr[data-name='from-the-browser']")
    row.wait_for()
    assert row.locator(".masked-key").inner_text() == secret[:10] + "********"
    assert "60 requests / minute" in row.inner_text() and "of 5,000 tokens" in row.inner_text()
    shot(page, "keys-new-secret")
    ask(gw, secret, f"@{north['slug']}", "browser-key")  # the new key works at once
    page.click("#new-key-done")
    assert secret not in page.content()
    page.reload()
    page.wait_for_selector("tr[data-name='from-the-browser']")
    assert secret not in page.content()  # shown once: never again
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-name='from-the-browser'] button:has-text('Revoke')").click()
    page.wait_for_selector("tr[data-name='from-the-browser'] .pill-bad")
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(gw, secret, f"@{north['slug']}", "browser-key")
    assert refused.value.status_code == 401 and "revoked" in str(refused.value)


def test_set_a_budget_and_see_usage_against_it(page, gw, world, admin):
    north = world["north"]
    target = new_key(admin, north["id"], ["completions.write"], "budgeted-key")
    ask(gw, target["key"], f"@{north['slug']}", "budget-user")
    sign_in(page, ADMIN)
    page.goto("/dashboard/#/keys")
    page.click("tr[data-name='budgeted-key'] button:has-text('Edit')")
    page.select_option("#budget-type", "tokens")
    page.fill("#budget-limit", "60")
    page.fill("#budget-alert", "40")
    page.select_option("#budget-reset", "monthly")
    shot(page, "keys-edit")
    page.click("#save-key")
    page.wait_for_selector("#keys-status:has-text('Saved budgeted-key')")
    for _ in range(2):  # counted against the new budget (max_tokens keeps each reservation under it)
        ask(gw, target["key"], f"@{north['slug']}", "budget-user", max_tokens=16)
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:  # usage settles from the request log, off the request path
        page.reload()
        cell = page.locator("tr[data-name='budgeted-key'] .budget-text")
        cell.wait_for()
        text = cell.inner_text()
        if text.startswith("16 of"):  # the fake upstream answers 8 tokens a request
            break
        time.sleep(0.3)
    used = int(text.split(" of ")[0].replace(",", ""))
    assert text == "16 of 60 tokens" and used == 16, text
    assert page.get_attribute("tr[data-name='budgeted-key'] meter", "value") == str(used)
    assert admin.get(f"/limits/key/{target['id']}").json()["used"] == used
    assert "resets monthly" in page.inner_text("tr[data-name='budgeted-key'] .budget")
    page.select_option("#key-workspace", north["id"])
    page.wait_for_selector(f"tr[data-key='{world['south']['infer']['id']}']", state="detached")
    shot(page, "keys")


def test_without_the_cookie_or_with_a_bad_csrf_token_the_page_is_refused(page, world):
    north = world["north"]
    sign_in(page, north["dash"]["key"])
    page.goto("/dashboard/#/keys")
    page.wait_for_selector(f"tr[data-key='{north['infer']['id']}']")
    # The page's own fetch, with a forged token, then without the cookie: refused, and nothing changes.
    answers = page.evaluate("""async (id) => {
      const send = (init) => fetch(`/dashboard/api/api-keys/${id}`, { method: "DELETE", ...init })
        .then(async (r) => [r.status, (await r.json()).message]);
      return [await send({ headers: { "X-CSRF-Token": "forged" } }),
              await send({ credentials: "omit", headers: { "X-CSRF-Token": "forged" } })];
    }""", north["infer"]["id"])
    assert answers[0][0] == 403 and "CSRF" in answers[0][1]
    assert answers[1][0] == 401 and answers[1][1].startswith("Not signed in")
    page.reload()
    page.wait_for_selector(f"tr[data-key='{north['infer']['id']}'] .pill-ok")
