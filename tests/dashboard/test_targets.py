"""The Targets page: this process's least-busy targets (in flight, the queue and KV cache their servers report,
health) through ``GET /dashboard/api/targets`` and in a real browser, against a real gateway and two fake
model servers on 127.0.0.1. Organisation-level sign-ins only; never the upstream's key nor its digest."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest

from tests.dashboard.browser import shot
from tests.dashboard.conftest import ADMIN, sign_in
from tests.dashboard.test_workspaces import Dash, envelope
from tests.fakes.model_server import ModelServer
from tests.gateway import GatewayProcess

pytestmark = pytest.mark.timeout(180)
SECRET = "sk-upstream-secret-7f3a9c2e1b"
INTERVAL = 0.5
VLLM_REPORT = "vllm:num_requests_running 2\nvllm:num_requests_waiting 3\nvllm:gpu_cache_usage_perc 0.25\n"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):  # the dashboard's gateway, with health probes every half second
    process = GatewayProcess(tmp_path_factory.mktemp("targets"), env={
        "SLUICEGATE_ADMIN_TOKEN": ADMIN, "SLUICEGATE_PROBE_INTERVAL": str(INTERVAL),
        "SLUICEGATE_PROBE_TIMEOUT": "0.3"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def servers():
    started = [ModelServer().start(), ModelServer().start()]
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def used(gw, servers):
    """Requests through a least-busy config until both targets were used; then the first reports a load."""
    config = json.dumps({"strategy": {"mode": "loadbalance", "policy": "least-busy"},
                         "targets": [{"provider": "openai", "api_key": SECRET, "custom_host": s.v1,
                                      "override_params": {"model": f"model-{n}"}} for n, s in enumerate(servers)]})
    made = 0
    while not all(s.chats for s in servers):
        assert made < 40, "least-busy never used one of two idle targets"
        response = httpx.post(f"{gw.v1}/chat/completions", headers={"x-portkey-config": config}, timeout=10,
                              json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, response.text
        made += 1
    servers[0].metrics_text = VLLM_REPORT
    return made


def wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def rows_by_url(dash: Dash) -> dict[str, dict]:
    response = dash.get("/targets")
    assert response.status_code == 200, response.text
    return {row["base_url"]: row for row in response.json()["data"]}


def test_the_targets_answer_shows_load_and_health_without_a_secret(gw, servers, used):
    a, b = servers
    dash = Dash(gw, ADMIN)
    rows = wait_for(lambda: (r := rows_by_url(dash)).get(a.v1, {}).get("server_queue") == 5.0 and r)
    assert set(rows) == {a.v1, b.v1}
    assert rows[a.v1] == {"provider": "openai", "base_url": a.v1, "model": "model-0", "in_flight": 0,
                          "server_queue": 5.0, "cache_usage": 0.25, "healthy": True, "requests": a.chats}
    assert rows[b.v1]["model"] == "model-1" and rows[b.v1]["server_queue"] is None
    assert rows[b.v1]["requests"] == b.chats and a.chats + b.chats == used
    text = dash.get("/targets").text
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in text and digest[:16] not in text and digest not in text
    # A failing probe shows within a refresh; a passing one brings the target back.
    a.health_status = 503
    wait_for(lambda: rows_by_url(dash)[a.v1]["healthy"] is False)
    a.health_status = 200
    wait_for(lambda: rows_by_url(dash)[a.v1]["healthy"] is True)


def test_an_organisation_key_sees_the_targets_a_workspace_key_is_refused(gw, admin, used):
    org = admin.post("/api-keys/organisation/service", json={"name": "org-ops", "scopes": ["analytics.view"]})
    assert org.status_code == 200, org.text
    assert len(Dash(gw, org.json()["key"]).get("/targets").json()["data"]) == 2
    space = admin.post("/workspaces", json={"name": "Tenants"}).json()
    ws = admin.post("/api-keys/workspace/service", json={"name": "tenant", "workspace_id": space["id"],
                                                         "scopes": ["analytics.view"]})
    assert ws.status_code == 200, ws.text
    message = envelope(Dash(gw, ws.json()["key"]).get("/targets"), 403)
    assert message == ("Refused: targets are shared by every workspace; sign in with the admin token or an "
                       "organisation key to see them")


@pytest.mark.parametrize(("how", "status", "message"), [
    ("no session", 401, "Not signed in, or the session ended: sign in at /dashboard/"),
    ("forged cookie", 401, "Not signed in, or the session ended: sign in at /dashboard/"),
    ("no scope", 403, "Refused: this sign-in lacks the scope 'analytics.view'"),
    ("POST", 405, None),
])
def test_the_targets_call_refuses(gw, admin, used, how, status, message):
    url = f"{gw.url}/dashboard/api/targets"
    if how == "no session":
        response = httpx.get(url, timeout=10, trust_env=False)
    elif how == "forged cookie":
        response = httpx.get(url, cookies={"sg_dashboard": "x" * 43}, timeout=10, trust_env=False)
    elif how == "no scope":
        key = admin.post("/api-keys/organisation/service", json={"name": "logs-only", "scopes": ["logs.list"]})
        response = Dash(gw, key.json()["key"]).get("/targets")
    else:
        response = Dash(gw, ADMIN).send("POST", "/targets", {})
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    if message:
        assert response.json()["message"] == message


def test_the_targets_page_shows_a_row_per_target_and_its_health(page, servers, used):
    a, _ = servers
    sign_in(page)
    page.goto("/dashboard/#/targets")
    page.wait_for_function("() => document.querySelectorAll('#target-rows tr').length === 2")
    row = page.locator("#target-rows tr", has_text=a.v1)
    assert row.locator("td.health").inner_text() == "healthy"
    page.wait_for_function(f"""() => [...document.querySelectorAll('#target-rows tr')].some(
        (tr) => tr.textContent.includes({json.dumps(a.v1)}) && tr.textContent.includes('25 %'))""", timeout=10_000)
    a.health_status = 503  # the page refreshes by itself and shows it leave rotation
    try:
        page.wait_for_function(f"""() => [...document.querySelectorAll('#target-rows tr')].some(
            (tr) => tr.textContent.includes({json.dumps(a.v1)}) && tr.querySelector('td.health').textContent === 'unhealthy')""",
                               timeout=15_000)
        shot(page, "targets")
    finally:
        a.health_status = 200
    assert SECRET not in page.content()
