"""Signing in to the dashboard with API keys, through its API by raw HTTP against a real gateway: two
workspaces, each with a provider, a config, keys and requests made through the openai SDK; a workspace
key's session sees its own workspace only (logs, analytics, providers, configs, keys) and never a row of
the other; the keys page's calls (create, limits, usage, revoke) and their malformed inputs."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest

from tests.dashboard.conftest import ADMIN, ask, new_key, wait_for_logs

pytestmark = pytest.mark.timeout(180)
DASH_SCOPES = ["logs.list", "logs.view", "analytics.view", "providers.*", "configs.*",
               "workspace_service_api_keys.*", "completions.write"]


class Dash:
    """A signed-in dashboard session: the cookie in the client, the CSRF token on every state change."""

    def __init__(self, gw, token: str) -> None:
        self.client = httpx.Client(base_url=f"{gw.url}/dashboard/api", timeout=15, trust_env=False)
        self.signed = self.client.post("/session", json={"token": token})
        self.csrf = self.signed.json().get("csrf_token", "") if self.signed.status_code == 200 else ""

    def get(self, path: str, **params) -> httpx.Response:
        return self.client.get(path, params=params)

    def send(self, method: str, path: str, body=None) -> httpx.Response:
        return self.client.request(method, path, json=body, headers={"X-CSRF-Token": self.csrf})


def envelope(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    return response.json()["message"]


@pytest.fixture(scope="module")
def world(gw, admin, llm):
    """Two workspaces, each with a provider on the fake upstream, a config, an inference key, a dashboard
    key and two logged requests."""
    spaces = {}
    for name in ("a", "b"):
        made = admin.post("/workspaces", json={"name": f"Team {name.upper()}"})
        assert made.status_code == 200, made.text  # a failure says why (once seen on a machine at load 10)
        space = made.json()
        slug = f"{name}-llm"
        assert admin.post("/providers", json={"slug": slug, "custom_host": llm.v1, "workspace_id": space["id"],
                                              "headers": {"Authorization": f"Bearer sk-{name}-upstream-77"}}
                          ).status_code == 201
        assert admin.post("/configs", json={"id": f"{name}-config", "config": {"provider": f"@{slug}"},
                                            "workspace_id": space["id"]}).status_code == 201
        infer = new_key(admin, space["id"], ["completions.write"], f"{name}-inference")
        dash = new_key(admin, space["id"], DASH_SCOPES, f"{name}-dashboard")
        user = f"{name}-user-{uuid.uuid4().hex[:6]}"
        for _ in range(2):
            ask(gw, infer["key"], f"@{slug}", user)
        spaces[name] = {"id": space["id"], "slug": slug, "infer": infer, "dash": dash, "user": user}
    wait_for_logs(admin, [s["user"] for s in spaces.values()], each=2)
    return spaces


def test_an_api_key_signs_in_and_sees_its_scopes_and_workspace(gw, world):
    a = world["a"]
    dash = Dash(gw, a["dash"]["key"])
    assert dash.signed.status_code == 200
    principal = dash.signed.json()["principal"]
    assert principal["workspace"] == a["id"] and principal["workspace_slug"] == "team-a"
    assert principal["name"].startswith("a-dashboard (sg-") and principal["key_id"] == a["dash"]["id"]
    assert "logs.list" in principal["scopes"] and "workspace_service_api_keys.create" in principal["scopes"]
    assert a["dash"]["key"] not in dash.signed.text
    assert dash.get("/session").json()["principal"] == principal


@pytest.mark.parametrize(("token", "status", "message"), [
    ("inference", 403, "Sign-in refused: this API key holds no scope the dashboard uses"),
    ("sg-not-a-key-at-all-0000000000000000000000000", 401, "Sign-in refused: Invalid API key"),
])
def test_a_key_without_dashboard_scopes_or_an_unknown_one_cannot_sign_in(gw, world, token, status, message):
    presented = world["a"]["infer"]["key"] if token == "inference" else token
    response = Dash(gw, presented).signed
    assert envelope(response, status).startswith(message)
    assert presented not in response.text


def test_a_workspace_key_sees_only_its_workspaces_logs(gw, world, admin):
    a, b = world["a"], world["b"]
    dash = Dash(gw, a["dash"]["key"])
    rows = dash.get("/logs", limit=200).json()["data"]
    assert rows and {row["workspace_id"] for row in rows} == {a["id"]}
    assert {row["user"] for row in rows} == {a["user"]}
    # Asking for the other workspace, its user or its key by name changes nothing: nothing of B's shows.
    assert dash.get("/logs", workspace_id=b["id"]).json()["data"] == []
    assert dash.get("/logs", user=b["user"]).json()["data"] == []
    assert dash.get("/logs", api_key_id=b["infer"]["id"]).json()["data"] == []
    theirs = admin.get("/logs", params={"user": b["user"]}).json()["data"][0]["id"]
    assert envelope(dash.get(f"/logs/{theirs}"), 404) == "No such log record"
    assert dash.get(f"/logs/{rows[0]['id']}").json()["workspace_id"] == a["id"]
    # The admin's session sees both.
    every = Dash(gw, ADMIN).get("/logs", limit=500).json()["data"]
    assert {a["user"], b["user"]} <= {row["user"] for row in every}


def test_a_workspace_keys_analytics_count_its_workspace_only(gw, world):
    a = world["a"]
    dash = Dash(gw, a["dash"]["key"])
    body = dash.get("/analytics", interval="all", group_by="workspace_id").json()
    groups = {row["group"]: row for row in body["data"]} if "data" in body else {}
    assert set(groups) == {a["id"]}, body
    users = dash.get("/analytics", interval="all", group_by="user").json()["data"]
    assert {row["group"] for row in users} == {a["user"]}


def test_a_workspace_key_sees_and_changes_only_its_providers_and_configs(gw, world, admin):
    a, b = world["a"], world["b"]
    dash = Dash(gw, a["dash"]["key"])
    assert [p["slug"] for p in dash.get("/providers").json()["providers"]] == [a["slug"]]
    assert [c["id"] for c in dash.get("/configs").json()["configs"]] == ["a-config"]
    other = f"Provider @{b['slug']} not found"
    assert envelope(dash.get(f"/providers/{b['slug']}"), 404) == other
    assert envelope(dash.send("PATCH", f"/providers/{b['slug']}", {"models": ["x"]}), 404) == other
    assert envelope(dash.send("POST", f"/providers/{b['slug']}/test"), 404) == other
    assert envelope(dash.send("DELETE", f"/providers/{b['slug']}"), 404) == other
    assert envelope(dash.get("/configs/b-config"), 404) == "Config b-config not found"
    assert envelope(dash.send("DELETE", "/configs/b-config"), 404) == "Config b-config not found"
    assert admin.get(f"/providers/{b['slug']}").status_code == 200 and admin.get("/configs/b-config").status_code == 200
    # Validation treats the other workspace's provider as absent (it does not confirm that it exists).
    errors = dash.send("POST", "/configs/validate", {"config": f'{{"provider": "@{b["slug"]}"}}'}).json()["errors"]
    assert [e["message"] for e in errors] == [f"Provider @{b['slug']} not found in the catalog"]
    assert dash.send("POST", "/configs/validate", {"config": f'{{"provider": "@{a["slug"]}"}}'}).json() == {"errors": []}
    # What it creates lands in its own workspace, and naming the other one is refused.
    made = dash.send("POST", "/configs", {"id": "a-made", "config": {"provider": f"@{a['slug']}"}})
    assert made.status_code == 201 and made.json()["workspace_id"] == a["id"]
    assert envelope(dash.send("POST", "/configs", {"id": "a-sneaky", "config": {"provider": "openai"},
                                                   "workspace_id": b["id"]}), 403).startswith("This API key may only")
    # Provider secrets never reach the page.
    assert "sk-a-upstream-77" not in dash.get("/providers").text


def test_a_workspace_key_lists_and_manages_only_its_workspaces_keys(gw, world, admin):
    a, b = world["a"], world["b"]
    dash = Dash(gw, a["dash"]["key"])
    listed = dash.get("/api-keys").json()["data"]
    assert {k["workspace_id"] for k in listed} == {a["id"]}
    assert {a["infer"]["id"], a["dash"]["id"]} <= {k["id"] for k in listed}
    assert all(k["key"].endswith("********") for k in listed)
    # Another workspace named, existing or not: the admin API's one 403, which tells nothing of what exists.
    for other in (b["id"], "no-such-workspace"):
        assert envelope(dash.get("/api-keys", workspace_id=other), 403) == "This API key may only act on its own workspace"
    missing = f"API key {b['infer']['id']} not found"
    assert envelope(dash.get(f"/api-keys/{b['infer']['id']}"), 404) == missing
    assert envelope(dash.send("PATCH", f"/api-keys/{b['infer']['id']}", {"name": "mine"}), 404) == missing
    assert envelope(dash.send("DELETE", f"/api-keys/{b['infer']['id']}"), 404) == missing
    ask(gw, b["infer"]["key"], f"@{b['slug']}", b["user"])  # B's key still works
    assert envelope(dash.send("POST", "/api-keys/workspace/service", {"name": "x", "workspace_id": b["id"]}),
                    403) == "This API key may only act on its own workspace"
    assert envelope(dash.send("POST", "/api-keys/organisation/service", {"name": "x"}), 403).startswith(
        "This API key does not have the 'organisation_service_api_keys.create' scope")
    assert envelope(dash.send("POST", "/api-keys/workspace/service", {"name": "x", "scopes": ["workspaces.*"]}),
                    403).startswith("This API key cannot grant scopes it does not hold")
    # The limits API keeps a workspace key to its workspace too (even one granted the organisation scope).
    reader = new_key(admin, a["id"], ["organisation_service_api_keys.read"], "a-limits-reader")
    theirs = httpx.get(f"{gw.url}/admin/api/limits/key/{b['infer']['id']}",
                       headers={"Authorization": f"Bearer {reader['key']}"}, trust_env=False)
    assert envelope(theirs, 404) == f"Key {b['infer']['id']} not found"
    ours = httpx.get(f"{gw.url}/admin/api/limits/key/{a['infer']['id']}",
                     headers={"Authorization": f"Bearer {reader['key']}"}, trust_env=False)
    assert ours.status_code == 200


def test_create_a_key_see_the_secret_once_set_a_budget_then_revoke(gw, world, admin):
    a = world["a"]
    dash = Dash(gw, a["dash"]["key"])
    body = {"name": "made-in-dashboard", "scopes": ["completions.write"],
            "rate_limits": [{"type": "requests", "unit": "rpm", "value": 100}],
            "usage_limits": {"type": "tokens", "credit_limit": 10000, "periodic_reset": "monthly"}}
    created = dash.send("POST", "/api-keys/workspace/service", body)
    assert created.status_code == 200, created.text
    secret, key_id = created.json()["key"], created.json()["id"]
    assert secret.startswith("sg-")
    shown = dash.get(f"/api-keys/{key_id}")
    assert secret not in shown.text and secret not in dash.get("/api-keys").text
    assert shown.json()["workspace_id"] == a["id"]
    ask(gw, secret, f"@{a['slug']}", "budgeted")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # usage settles from the request log, off the request path
        row = next(k for k in dash.get("/api-keys").json()["data"] if k["id"] == key_id)
        if row["used"]:
            break
        time.sleep(0.2)
    assert row["usage_limits"] == {"type": "tokens", "credit_limit": 10000.0, "periodic_reset": "monthly",
                                   "alert_threshold": None}
    assert row["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 100}] and row["used"] > 0
    lowered = dash.send("PATCH", f"/api-keys/{key_id}", {"usage_limits": {"type": "tokens", "credit_limit": 500}})
    assert lowered.status_code == 200 and lowered.json()["usage_limits"]["credit_limit"] == 500
    assert dash.send("DELETE", f"/api-keys/{key_id}").status_code == 200
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(gw, secret, f"@{a['slug']}", "budgeted")
    assert refused.value.status_code == 401 and "revoked" in str(refused.value)
    assert next(k for k in dash.get("/api-keys").json()["data"] if k["id"] == key_id)["status"] == "revoked"


def test_revoking_the_key_a_session_signed_in_with_ends_that_session(gw, world, admin):
    a = world["a"]
    key = new_key(admin, a["id"], ["logs.list"], "short-lived")
    dash = Dash(gw, key["key"])
    assert dash.get("/logs").status_code == 200
    assert admin.delete(f"/api-keys/{key['id']}").status_code == 200
    assert "revoked" in envelope(dash.get("/logs"), 401)
    assert envelope(Dash(gw, key["key"]).signed, 401) == "Sign-in refused: This API key has been revoked"


def test_a_scope_removed_from_the_key_counts_at_once(gw, world, admin):
    a = world["a"]
    key = new_key(admin, a["id"], ["logs.list", "analytics.view"], "narrowing")
    dash = Dash(gw, key["key"])
    assert dash.get("/analytics", interval="all").status_code == 200
    assert admin.put(f"/api-keys/{key['id']}", json={"scopes": ["logs.list"]}).status_code == 200
    assert envelope(dash.get("/analytics", interval="all"), 403) == "Refused: this sign-in lacks the scope 'analytics.view'"


def test_key_changes_need_the_session_and_its_csrf_token(gw, world):
    a = world["a"]
    dash = Dash(gw, a["dash"]["key"])
    no_csrf = dash.client.post("/api-keys/workspace/service", json={"name": "x"})
    assert "CSRF" in envelope(no_csrf, 403)
    bad_csrf = dash.client.delete(f"/api-keys/{a['infer']['id']}", headers={"X-CSRF-Token": dash.csrf + "x"})
    assert "CSRF" in envelope(bad_csrf, 403)
    no_cookie = httpx.post(f"{gw.url}/dashboard/api/api-keys/workspace/service", json={"name": "x"},
                           headers={"X-CSRF-Token": dash.csrf}, trust_env=False)
    assert envelope(no_cookie, 401).startswith("Not signed in")
    assert a["infer"]["id"] in {k["id"] for k in dash.get("/api-keys").json()["data"] if k["status"] == "active"}


KEY_MALFORMED = [
    # (method, path, raw body, status, message start)
    ("GET", "/api-keys?bogus=1", None, 400, "'bogus' is not a parameter of this listing"),
    ("GET", "/api-keys?workspace_id=no-such-space", None, 404, "Workspace no-such-space not found"),
    ("GET", "/api-keys/no-such-key", None, 404, "API key no-such-key not found"),
    ("POST", "/api-keys/robot/service", b'{"name": "x"}', 400, "the path is /api-keys/"),
    ("POST", "/api-keys/workspace/service", b"nope", 400, "body: not valid JSON"),
    ("POST", "/api-keys/workspace/service", b"[1]", 400, "body: expected a JSON object"),
    ("POST", "/api-keys/workspace/service", b'{"workspace_id": "ws-default"}', 400, "name:"),
    ("POST", "/api-keys/workspace/service", b'{"name": "x"}', 400, "workspace_id: required"),
    ("POST", "/api-keys/workspace/service", b'{"name": "x", "workspace_id": "ws-default", "scopes": "all"}',
     400, "scopes: expected a list"),
    ("POST", "/api-keys/workspace/service", b'{"name": "x", "workspace_id": "ws-default", "scopes": ["nope.read"]}',
     400, "scopes: unknown scope 'nope.read'"),
    ("POST", "/api-keys/workspace/service",
     b'{"name": "x", "workspace_id": "ws-default", "rate_limits": [{"unit": "rpw", "value": 1}]}',
     400, "'rate_limits[0].unit' must be one of rpm, rph, rpd"),
    ("POST", "/api-keys/workspace/service",
     b'{"name": "x", "workspace_id": "ws-default", "usage_limits": {"credit_limit": -1}}',
     400, "'usage_limits.credit_limit' must be a positive number"),
    ("POST", "/api-keys/workspace/service", b'{"name": "x", "workspace_id": "ws-default", "expires_at": "soon"}',
     400, "expires_at: expected an ISO 8601 date-time"),
    ("POST", "/api-keys/workspace/service",
     b'{"name": "x", "workspace_id": "ws-default", "expires_at": "2001-01-01T00:00:00Z"}',
     400, "expires_at: 2001-01-01T00:00:00+00:00 is not in the future"),
    ("POST", "/api-keys/workspace/service",
     b'{"name": "x", "workspace_id": "ws-default", "defaults": {"metadata": {"te\\"am": "a"}}}',
     400, "defaults.metadata: the key 'te\"am' must be non-empty"),
    ("POST", "/api-keys/workspace/service",
     b'{"name": "x", "workspace_id": "ws-default", "defaults": {"metadata": {"": "a"}}}',
     400, "defaults.metadata: the key '' must be non-empty"),
    ("PATCH", "/api-keys/no-such-key", b'{"name": "y"}', 404, "API key no-such-key not found"),
    ("DELETE", "/api-keys/no-such-key", None, 404, "API key no-such-key not found"),
    ("GET", "/workspaces/x", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), KEY_MALFORMED)
def test_malformed_key_requests_are_a_4xx_in_the_envelope(gw, world, method, path, body, status, message):
    dash = Dash(gw, ADMIN)
    response = dash.client.request(method, path, content=body,
                                   headers={"X-CSRF-Token": dash.csrf, "Content-Type": "application/json"})
    assert envelope(response, status).startswith(message)


def test_malformed_updates_write_nothing(gw, world, admin):
    a = world["a"]
    dash = Dash(gw, ADMIN)
    key_id = a["infer"]["id"]
    for body, message in ((b'{"status": "maybe"}', "status: expected one of active, revoked"),
                          (b'{"scopes": ["completions.write", 7]}', "scopes: expected a list"),
                          (b'{"rate_limits": {"type": "requests", "unit": "rpm", "value": 0}}',
                           "'rate_limits[0].value' must be a positive integer"),
                          (b'{"expires_at": "2001-01-01T00:00:00Z"}', "expires_at: 2001-01-01T00:00:00+00:00 is not "
                           "in the future; to stop a key now, revoke it"),
                          (b'{"defaults": {"metadata": {"a\\\\b": "x"}}}', "defaults.metadata: the key 'a\\\\b'")):
        response = dash.client.patch(f"/api-keys/{key_id}", content=body,
                                     headers={"X-CSRF-Token": dash.csrf, "Content-Type": "application/json"})
        assert envelope(response, 400).startswith(message)
    stored = admin.get(f"/api-keys/{key_id}").json()
    assert stored["status"] == "active" and stored["scopes"] == ["completions.write"]
    assert stored["expires_at"] is None and stored["defaults"] == {}
    assert "rate_limits" not in stored or stored["rate_limits"] == []


def test_no_key_secret_reaches_the_log_or_the_store(gw, world):
    """Every key these tests signed in or made requests with: not in the gateway's output, not in any file
    of its data directory (the store keeps an HMAC and a 10-character prefix)."""
    secrets = [space[role]["key"] for space in world.values() for role in ("infer", "dash")]
    Dash(gw, world["a"]["dash"]["key"]).get("/api-keys")  # one more sign-in and list, to be sure
    files = [p for p in gw.data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix in (".db", ".sqlite", ".sqlite3") or "sqlite" in p.name for p in files), files
    for secret in secrets:
        assert secret not in gw.log()
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
