"""Portkey's Admin API through the real portkey-ai SDK: workspaces, API keys, integrations, providers and
configs, then isolation between two workspaces (keys, catalog, configs, logs) and the audit trail."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from portkey_ai import Portkey
from portkey_ai.api_resources.exceptions import APIStatusError, NotFoundError, PermissionDeniedError

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

HELLO = [{"role": "user", "content": "hello"}]


def refused(status: int, call, *args, **kwargs) -> str:
    """Inference errors come from the SDK's vendored openai client, admin ones from portkey_ai's own: both
    carry the status code."""
    try:
        call(*args, **kwargs)
    except Exception as exc:
        assert getattr(exc, "status_code", None) == status, exc
        return str(exc)
    raise AssertionError(f"expected HTTP {status}")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayProcess:
    process = GatewayProcess(tmp_path_factory.mktemp("admin-api"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(gateway: GatewayProcess) -> Portkey:
    return Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)


def _private_llm(admin: Portkey, upstream_v1: str, workspace_id: str, slug: str) -> None:
    """The seed's private LLM, registered the way a Portkey Admin API script does it."""
    integration = admin.integrations.create(
        ai_provider_id="openai", name=f"{slug} integration",
        configurations={"custom_host": upstream_v1, "custom_headers": {"X-Tenant": f"tenant-{slug}"}},
        key=f"sk-upstream-{slug}-0123456789")
    assert integration.id and integration.slug
    created = admin.providers.create(name=slug, integration_id=integration.id, workspace_id=workspace_id, slug=slug)
    assert created.slug == slug


def test_the_admin_api_through_the_sdk(admin: Portkey, gateway: GatewayProcess, upstream) -> None:
    space = admin.admin.workspaces.create(name="Research", description="the research team")
    assert space.slug == "research" and space.id.startswith("ws-")
    assert {w["slug"] for w in admin.admin.workspaces.list().data} >= {"default", "research"}
    assert admin.admin.workspaces.update(workspace_id=space.id, name="Research 2").name == "Research 2"
    assert admin.admin.workspaces.retrieve(workspace_id=space.id).name == "Research 2"

    _private_llm(admin, upstream.v1, space.id, "research-llm")
    detail = admin.providers.retrieve(slug="research-llm")
    assert detail.workspace_id == space.id and detail.custom_host == upstream.v1
    config = admin.configs.create(name="research default", config={"provider": "@research-llm"},
                                  workspace_id=space.id)
    assert admin.configs.retrieve(slug=config.slug).config == {"provider": "@research-llm"}

    created = admin.api_keys.create(type="workspace", sub_type="service", name="svc", workspace_id=space.id,
                                    scopes=["completions.write"], defaults={"config_id": config.slug})
    assert created.object == "api-key" and created.key.startswith("sg-")
    shown = admin.api_keys.retrieve(id=created.id)
    assert shown.name == "svc" and created.key not in str(shown.model_dump()) and shown.key.endswith("********")
    assert [k["id"] for k in admin.api_keys.list(workspace_id=space.id).data] == [created.id]

    # The new key works at once (no header but the key: the default config picks the provider) …
    client = Portkey(api_key=created.key, base_url=gateway.v1)
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content == "echo: hello"
    received = upstream.last
    assert received.headers["Authorization"] == "Bearer sk-upstream-research-llm-0123456789"
    assert received.headers["X-Tenant"] == "tenant-research-llm"
    # … and not after DELETE (Portkey's delete: the key stops working).
    admin.api_keys.update(id=created.id, name="svc renamed")
    assert admin.api_keys.retrieve(id=created.id).name == "svc renamed"
    admin.api_keys.delete(id=created.id)
    assert "revoked" in refused(401, client.chat.completions.create, model="m", messages=HELLO)

    admin.configs.delete(slug=config.slug)
    admin.providers.delete(slug="research-llm")
    with pytest.raises(NotFoundError):
        admin.providers.retrieve(slug="research-llm")
    admin.admin.workspaces.delete(workspace_id=space.id)  # empty now: only a revoked key is left


def _catalog_entry(gateway: GatewayProcess, slug: str) -> dict:
    """The stored catalog entry as /admin/api shows it (credentials masked), minus what names this one."""
    shown = httpx.get(f"{gateway.url}/admin/api/providers/{slug}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=10)
    assert shown.status_code == 200, shown.text
    entry = shown.json()
    entry["headers"] = {name.lower(): value for name, value in entry["headers"].items()}  # names: any case
    return {k: v for k, v in entry.items() if k not in ("slug", "integration_id", "notes", "created_at", "updated_at")}


def test_integrations_and_configs_through_the_sdk_are_the_clis_catalog(admin: Portkey, gateway: GatewayProcess,
                                                                        upstream) -> None:
    """The rest of the integrations and configs calls (list, retrieve, update, delete), and the catalog
    entry a provider made from an integration is the one ``sluicegate providers add`` makes."""
    space = admin.admin.workspaces.create(name="Twins")
    secret = "sk-upstream-twin-0123456789"
    integration = admin.integrations.create(
        ai_provider_id="openai", name="twin integration", slug="twin-int",
        configurations={"custom_host": upstream.v1, "custom_headers": {"X-Tenant": "tenant-twin"}}, key=secret)
    assert "twin-int" in [i["slug"] for i in admin.integrations.list().data]
    shown = admin.integrations.retrieve(slug="twin-int").model_dump()
    assert shown["id"] == integration.id and shown["configurations"] == {
        "custom_host": upstream.v1, "custom_headers": ["X-Tenant"]}  # header names only, never values
    assert shown["masked_key"] and secret not in str(shown) and "tenant-twin" not in str(shown)
    admin.integrations.update(slug="twin-int", name="twin renamed", description="for the audit")
    renamed = admin.integrations.retrieve(slug="twin-int").model_dump()
    assert (renamed["name"], renamed["description"]) == ("twin renamed", "for the audit")

    admin.providers.create(name="twin", integration_id=integration.id, workspace_id=space.id, slug="twin-sdk")
    done = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "add", "twin-cli", "--custom-host",
                           upstream.v1, "--header", f"Authorization: Bearer {secret}", "--header",
                           "X-Tenant: tenant-twin", "--workspace", space.id],
                          env=gateway.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _catalog_entry(gateway, "twin-sdk") == _catalog_entry(gateway, "twin-cli")
    sent = []
    for slug in ("twin-sdk", "twin-cli"):
        deadline = time.monotonic() + 10  # the CLI wrote to the store: the server sees it within a poll
        while (answer := httpx.post(f"{gateway.v1}/chat/completions", timeout=30,
                                    headers={"x-portkey-api-key": ADMIN_TOKEN, "x-portkey-provider": f"@{slug}"},
                                    json={"model": "m", "messages": HELLO})).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        sent.append((upstream.last.headers["Authorization"], upstream.last.headers["X-Tenant"]))
    assert sent == [(f"Bearer {secret}", "tenant-twin")] * 2

    config = admin.configs.create(name="twin config", config={"provider": "@twin-sdk"}, workspace_id=space.id)
    admin.configs.update(slug=config.slug, config={"provider": "@twin-cli"})
    assert admin.configs.retrieve(slug=config.slug).config == {"provider": "@twin-cli"}
    assert config.slug in [c["slug"] for c in admin.configs.list(workspace_id=space.id).data]

    with pytest.raises(APIStatusError) as in_use:  # a provider made from it still exists
        admin.integrations.delete(slug="twin-int")
    assert in_use.value.status_code == 409 and "delete them first" in str(in_use.value)
    admin.configs.delete(slug=config.slug)
    with pytest.raises(NotFoundError):
        admin.configs.retrieve(slug=config.slug)
    admin.providers.delete(slug="twin-sdk")
    admin.integrations.delete(slug="twin-int")
    with pytest.raises(NotFoundError):
        admin.integrations.retrieve(slug="twin-int")


def test_an_integration_pointing_at_a_forbidden_host_is_refused(admin: Portkey) -> None:
    with pytest.raises(Exception) as refused:
        admin.integrations.create(ai_provider_id="openai", configurations={"custom_host": "http://169.254.169.254/v1"})
    assert "Invalid custom host" in str(refused.value)


def _logs(gateway: GatewayProcess, token: str, **params: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}/admin/api/logs", params=params, headers={"authorization": f"Bearer {token}"},
                     timeout=10)


def test_isolation_between_two_workspaces(admin: Portkey, gateway: GatewayProcess, upstream) -> None:
    spaces = {name: admin.admin.workspaces.create(name=f"iso {name}").id for name in ("a", "b")}
    keys, key_ids = {}, {}
    for name, space in spaces.items():
        _private_llm(admin, upstream.v1, space, f"iso-{name}")
        admin.configs.create(name=f"iso {name}", config={"provider": f"@iso-{name}"}, workspace_id=space)
        made = admin.api_keys.create(
            type="workspace", sub_type="service", name=f"iso {name}", workspace_id=space,
            scopes=["completions.write", "logs.list", "logs.view", "providers.list", "providers.read",
                    "configs.list", "configs.read", "workspace_service_api_keys.list", "analytics.view"])
        keys[name], key_ids[name] = made.key, made.id
    a = Portkey(api_key=keys["a"], base_url=gateway.v1)
    # Catalog: each key lists and reads only its own workspace's providers and configs.
    assert [p["slug"] for p in a.providers.list().data] == ["iso-a"]
    assert [c["workspace_id"] for c in a.configs.list().data] == [spaces["a"]]
    with pytest.raises(NotFoundError):
        a.providers.retrieve(slug="iso-b")
    # Keys: its own workspace's only; it cannot make organisation keys or keys elsewhere.
    assert {k["workspace_id"] for k in a.api_keys.list().data} == {spaces["a"]}
    with pytest.raises(PermissionDeniedError):
        a.api_keys.create(type="workspace", sub_type="service", name="x", workspace_id=spaces["b"])
    # Without the scope, an admin call is refused, naming it.
    with pytest.raises(PermissionDeniedError, match="providers.create"):
        a.providers.create(name="x", integration_id="whatever", slug="x")
    # Inference: its own provider, not the other's.
    assert a.chat.completions.create(model="@iso-a/m", messages=HELLO).choices[0].message.content == "echo: hello"
    assert "@iso-b" in refused(403, a.chat.completions.create, model="@iso-b/m", messages=HELLO)
    Portkey(api_key=keys["b"], base_url=gateway.v1).chat.completions.create(model="@iso-b/m", messages=HELLO)
    # Logs: each key sees its workspace's rows only, even when it asks for the other's.
    deadline = time.monotonic() + 20
    while len(_logs(gateway, ADMIN_TOKEN, workspace_id=spaces["b"]).json()["data"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = _logs(gateway, keys["a"]).json()["data"]
    assert seen and {row["workspace_id"] for row in seen} == {spaces["a"]}
    assert _logs(gateway, keys["a"], workspace_id=spaces["b"]).json()["data"] == []
    other = _logs(gateway, ADMIN_TOKEN, workspace_id=spaces["b"]).json()["data"][0]
    assert httpx.get(f"{gateway.url}/admin/api/logs/{other['id']}", timeout=10,
                     headers={"authorization": f"Bearer {keys['a']}"}).status_code == 404
    grouped = httpx.get(f"{gateway.url}/admin/api/analytics", params={"group_by": "workspace_id"}, timeout=10,
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert {spaces["a"], spaces["b"]} <= {entry["group"] for entry in grouped["data"]}, grouped
    # By key: the admin groups by api_key_id and filters on it; a workspace key counts its workspace only.
    def by_key(token: str, **params: str) -> set[str]:
        answer = httpx.get(f"{gateway.url}/admin/api/analytics", params={"group_by": "api_key_id", **params},
                           timeout=10, headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return {entry["group"] for entry in answer.json()["data"]}
    assert {key_ids["a"], key_ids["b"]} <= by_key(ADMIN_TOKEN)
    assert by_key(ADMIN_TOKEN, api_key_id=key_ids["b"]) == {key_ids["b"]}
    assert by_key(keys["a"]) == {key_ids["a"]}
    assert [row["api_key_id"] for row in _logs(gateway, ADMIN_TOKEN, api_key_id=key_ids["b"]).json()["data"]] == [
        key_ids["b"]]


def test_audit_trail(admin: Portkey, gateway: GatewayProcess) -> None:
    space = admin.admin.workspaces.create(name="Audited")
    created = admin.api_keys.create(type="workspace", sub_type="user", name="u", workspace_id=space.id)
    admin.api_keys.update(id=created.id, description="now with a description")
    admin.api_keys.delete(id=created.id)
    events = httpx.get(f"{gateway.v1}/audit-logs", params={"workspace_id": space.id}, timeout=10,
                       headers={"x-portkey-api-key": ADMIN_TOKEN}).json()["data"]
    assert [e["action"] for e in events] == ["api_key.revoke", "api_key.update", "api_key.create",
                                             "workspace.create"]
    assert all(e["actor"] == "admin-token" for e in events)
    update = events[1]
    assert update["before"]["description"] == "" and update["after"]["description"] == "now with a description"
    assert created.key not in str(events)

    def query(**params: object) -> list[str]:
        answer = httpx.get(f"{gateway.v1}/audit-logs", params={"workspace_id": space.id, **params}, timeout=10,
                           headers={"x-portkey-api-key": ADMIN_TOKEN})
        assert answer.status_code == 200, answer.text
        return [e["action"] for e in answer.json()["data"]]
    assert query(resource_type="workspace") == ["workspace.create"]
    assert query(action="api_key.update") == ["api_key.update"]
    assert query(actor="admin-token", limit=2) == ["api_key.revoke", "api_key.update"]  # newest first
    assert query(actor="cli") == []


def test_catalog_writes_are_audited(admin: Portkey, gateway: GatewayProcess, upstream) -> None:
    space = admin.admin.workspaces.create(name="Audited catalog")
    _private_llm(admin, upstream.v1, space.id, "audited-llm")
    admin.providers.update(slug="audited-llm", note="for the audit")
    events = httpx.get(f"{gateway.url}/admin/api/audit-logs", params={"workspace_id": space.id}, timeout=10,
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["data"]
    assert [e["action"] for e in events][:2] == ["provider.update", "provider.create"]
    update = events[0]
    assert update["before"]["notes"] == "" and update["after"]["notes"] == "for the audit"
    assert update["after"]["headers"]["authorization"].startswith("Bearer sk-")  # masked
    assert "sk-upstream-audited-llm-0123456789" not in str(events)
    integration = httpx.get(f"{gateway.v1}/audit-logs", params={"action": "integration.create"},
                            timeout=10, headers={"x-portkey-api-key": ADMIN_TOKEN}).json()["data"]
    assert integration and "sk-upstream-audited-llm-0123456789" not in str(integration)


def test_audit_limit_out_of_range_is_a_400_naming_it(gateway: GatewayProcess) -> None:
    """As on /admin/api/logs: silently clamped, limit=0 answered one event."""
    for base in (gateway.v1, f"{gateway.url}/admin/api"):
        for limit in ("0", "-5", "1001", "many"):
            answer = httpx.get(f"{base}/audit-logs", params={"limit": limit}, timeout=10,
                               headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
            assert answer.status_code == 400, (base, limit, answer.text)
            assert answer.json()["message"] == "'limit' must be an integer from 1 to 1000"


def test_the_audit_trail_pages_back_and_refuses_what_it_does_not_filter_by(admin: Portkey,
                                                                          gateway: GatewayProcess) -> None:
    # A misspelt filter was ignored (the whole trail came back), and events past the newest 1,000 were out of
    # reach: before_id pages back.
    space = admin.admin.workspaces.create(name="Paged audit")
    for n in range(5):
        admin.admin.workspaces.update(workspace_id=space.id, name=f"Paged audit {n}")
    url, auth = f"{gateway.url}/admin/api/audit-logs", {"authorization": f"Bearer {ADMIN_TOKEN}"}
    everything = httpx.get(url, params={"workspace_id": space.id}, headers=auth, timeout=10).json()["data"]
    assert len(everything) == 6
    pages, before = [], None
    while True:
        params = {"workspace_id": space.id, "limit": "4", **({"before_id": before} if before else {})}
        answer = httpx.get(url, params=params, headers=auth, timeout=10).json()
        assert answer["total"] == 6  # every matching event, on every page: it was the page's length
        page = answer["data"]
        if not page:
            break
        pages.append([event["id"] for event in page])
        before = str(page[-1]["id"])
    assert [len(page) for page in pages] == [4, 2]
    assert [n for page in pages for n in page] == [e["id"] for e in everything]
    for params, words in (({"workspace": space.id}, "'workspace' is not a parameter of the audit trail"),
                          ({"before_id": "-3"}, "'before_id' must be an event's id"),
                          ({"before_id": "x"}, "'before_id' must be an event's id"),
                          ({"before_id": "0"}, "'before_id' must be an event's id"),
                          ({"limit": "\u0665"}, "'limit' must be an integer from 1 to")):
        refused = httpx.get(url, params=params, headers=auth, timeout=10)
        assert refused.status_code == 400 and refused.json()["message"].startswith(words), refused.text


def test_workspaces_by_name_take_like_wildcards_as_typed(admin: Portkey, gateway: GatewayProcess) -> None:
    """name= is a substring as typed: "%" and "_" matched every workspace (LIKE wildcards)."""
    for name in ("Fifty % off", "snake_case"):
        admin.admin.workspaces.create(name=name)
    for typed, found in (("%", ["Fifty % off"]), ("_", ["snake_case"])):
        listed = httpx.get(f"{gateway.url}/admin/api/workspaces", params={"name": typed}, timeout=10,
                           headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["data"]
        assert [w["name"] for w in listed] == found


def test_listings_page_as_the_sdk_asks_and_filter_by_what_it_sends(admin: Portkey, gateway: GatewayProcess) -> None:
    """current_page and page_size (pageSize, currentPage and exact_name for workspaces, type for integrations)
    were ignored: every entry came back on every page."""
    for name in ("Paged A", "Paged B", "Paged C"):
        admin.admin.workspaces.create(name=name)
    every = admin.admin.workspaces.list().data
    pages = [admin.admin.workspaces.list(page_size=2, current_page=page).data for page in range(3)]
    assert [len(page) for page in pages][:1] == [2] and [w["id"] for page in pages for w in page] == [
        w["id"] for w in every][:6]
    assert [w["name"] for w in admin.admin.workspaces.list(exact_name="Paged B").data] == ["Paged B"]
    for slug in ("paged-1", "paged-2"):
        admin.integrations.create(ai_provider_id="openai", name=slug, slug=slug, key=f"sk-{slug}-0123456789",
                                  configurations={"custom_host": "http://127.0.0.1:9/v1"})
    listed = admin.integrations.list(page_size=1, current_page=1)
    assert listed.total >= 2 and len(listed.data) == 1
    assert admin.integrations.list(type="workspace").data == []  # these are organisation-wide
    assert {i["slug"] for i in admin.integrations.list(type="organisation").data} >= {"paged-1", "paged-2"}


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/admin/api/providers", {"workspace": "default"}, "'workspace' is not a parameter of this listing"),
    ("/admin/api/configs", {"workspace_id": ""}, "'workspace_id' must not be empty"),
    ("/v1/api-keys", {"workspace_id": ""}, "'workspace_id' must not be empty"),
    ("/v1/api-keys", {"bogus": "1"}, "'bogus' is not a parameter of this listing"),
    ("/v1/admin/workspaces", {"bogus": "1"}, "'bogus' is not a parameter of this listing"),
    ("/v1/providers", {"page_size": "0"}, "'page_size' must be a whole number from 1 to 1000"),
    ("/v1/integrations", {"type": "team"}, "'type' must be one of workspace, organisation, all"),
    ("/v1/audit-logs", [("limit", "1"), ("limit", "500")], "'limit' is given twice"),
])
def test_listings_refuse_what_they_would_ignore(gateway: GatewayProcess, path: str, params, message: str) -> None:
    refused = httpx.get(f"{gateway.url}{path}", params=params, timeout=10,
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert refused.status_code == 400 and refused.json()["message"].startswith(message), refused.text


def test_the_audit_trail_takes_a_workspace_slug(admin: Portkey, gateway: GatewayProcess) -> None:
    space = admin.admin.workspaces.create(name="Audited Slug")
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    by_id = httpx.get(f"{gateway.url}/v1/audit-logs", params={"workspace_id": space.id}, headers=auth).json()
    by_slug = httpx.get(f"{gateway.url}/v1/audit-logs", params={"workspace_id": space.slug}, headers=auth).json()
    assert by_slug["data"] == by_id["data"] and by_id["data"]  # a slug matched no event
    unknown = httpx.get(f"{gateway.url}/v1/audit-logs", params={"workspace_id": "nobody"}, headers=auth)
    assert unknown.status_code == 404


def test_catalog_writes_refuse_what_they_would_not_do(admin: Portkey, gateway: GatewayProcess) -> None:
    """A provider's custom_host in an update, a workspace_id that is not a string: answered 200 and not done
    (a number made an organisation-wide integration)."""
    admin.integrations.create(ai_provider_id="openai", name="unchanged", slug="unchanged", key="sk-unchanged-0123456789",
                              configurations={"custom_host": "http://127.0.0.1:9/v1"})
    admin.providers.create(name="unchanged", integration_id="unchanged", slug="unchanged")
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    cases = [
        ("PUT", "/v1/providers/unchanged", {"custom_host": "http://127.0.0.1:1/v1", "note": "changed"},
         "custom_host: unknown field (allowed: note); a provider's host and credential come from its integration"),
        ("PUT", "/v1/providers/unchanged", {"note": 7}, "note: expected a string"),
        ("POST", "/v1/integrations", {"ai_provider_id": "openai", "key": "sk-x-0123456789", "workspace_id": 5},
         "workspace_id: expected a workspace id or slug"),
        ("POST", "/v1/providers", {"integration_id": "unchanged", "slug": "other", "workspace_id": 5},
         "workspace_id: expected a workspace id or slug"),
        ("POST", "/v1/providers", {"integration_id": "unchanged", "slug": "other", "custom_host": "http://x/v1"},
         "custom_host: unknown field"),
    ]
    for method, path, body, message in cases:
        answer = httpx.request(method, f"{gateway.url}{path}", json=body, headers=auth, timeout=10)
        assert answer.status_code == 400 and answer.json()["message"].startswith(message), (path, answer.text)
    shown = httpx.get(f"{gateway.url}/v1/providers/unchanged", headers=auth).json()
    assert "127.0.0.1:1" not in str(shown) and shown.get("note", "") != "changed"
    assert "other" not in {p["slug"] for p in admin.providers.list().data}


def test_a_config_write_refuses_what_it_would_not_do(admin: Portkey, gateway: GatewayProcess) -> None:
    """``configs.update(status="archived")`` and ``configs.create(is_default=1)`` (the SDK's own fields) were
    200s that left the config serving and made no default; a misspelt field was ignored the same way."""
    made = admin.configs.create(name="kept", config={"retry": {"attempts": 1}})
    cases = [
        ("PUT", f"/v1/configs/{made.slug}", {"status": "archived"},
         "status: only 'active' is supported; delete the config to retire it"),
        ("PUT", f"/v1/configs/{made.slug}", {"slug": "renamed"}, "slug: cannot be changed"),
        ("PUT", f"/v1/configs/{made.slug}", {"name": 5}, "name: expected a string"),
        ("PUT", f"/v1/configs/{made.slug}", {"confg": {"retry": {"attempts": 2}}}, "confg: unknown field"),
        ("POST", "/v1/configs", {"name": "d", "config": {"retry": {"attempts": 1}}, "is_default": 1},
         "is_default: a default config is not modelled here"),
        ("POST", "/v1/configs", {"name": 5, "config": {"retry": {"attempts": 1}}}, "name: expected a string"),
        ("POST", "/v1/configs", {"name": "d", "config": {"retry": {"attempts": 1}}, "workspace": "x"},
         "workspace: unknown field"),
    ]
    for method, path, body, message in cases:
        answer = httpx.request(method, f"{gateway.url}{path}", json=body, headers=AUTH, timeout=10)
        assert answer.status_code == 400 and answer.json()["message"].startswith(message), (body, answer.text)
    shown = admin.configs.retrieve(slug=made.slug)
    assert shown.config == {"retry": {"attempts": 1}} and shown.name == "kept"
    # What the SDK sends when it changes what is modelled still works.
    admin.configs.update(slug=made.slug, name="renamed", config={"retry": {"attempts": 2}}, status="active")
    assert admin.configs.retrieve(slug=made.slug).name == "renamed"
    admin.configs.delete(slug=made.slug)


# A credential whose bytes are not UTF-8 reaches the gateway as lone surrogates: every admin surface was a 500.
NOT_UTF8 = [
    ("GET", "/admin/api/logs", {"Authorization": b"Bearer \xff\xfe\x80"}),
    ("GET", "/admin/api/providers", {"x-portkey-api-key": b"\xc3(abc"}),
    ("HEAD", "/admin/api/providers", {"x-portkey-api-key": b"\xc3(abc"}),
    ("GET", "/admin/api/workspaces", {"x-portkey-api-key": b"\xff"}),
    ("GET", "/admin/api/limits/key/any", {"x-portkey-api-key": b"\xff"}),
    ("GET", "/v1/api-keys", {"x-portkey-api-key": b"\xff"}),
    ("GET", "/v1/integrations", {"x-portkey-api-key": b"\xff"}),
    ("GET", "/v1/audit-logs", {"x-portkey-api-key": b"\xff"}),
    ("GET", "/v1/admin/workspaces", {"Authorization": b"Bearer \xff"}),
]


@pytest.mark.parametrize(("method", "path", "headers"), NOT_UTF8, ids=[f"{m} {p} {h}" for m, p, h in NOT_UTF8])
def test_a_credential_that_is_not_utf8_is_a_401(gateway: GatewayProcess, method: str, path: str,
                                                headers: dict[str, bytes]) -> None:
    answer = httpx.request(method, f"{gateway.url}{path}", headers=headers, timeout=10)
    assert answer.status_code == 401, answer.text
    if method != "HEAD":
        assert answer.json()["status"] == "failure" and "\\udc" not in answer.text and "\ufffd" not in answer.text


@pytest.mark.parametrize("body", [b"not json", b"x" * 300_000])
def test_a_stranger_s_key_request_is_refused_before_its_body_is_read(gateway: GatewayProcess, body: bytes) -> None:
    # It was answered 400 "not valid JSON" or 413 before the 401: the body was read and judged first.
    answer = httpx.post(f"{gateway.url}/v1/api-keys/workspace/service", content=body, timeout=10)
    assert answer.status_code == 401, answer.text


# defaults.metadata is merged under every request's x-portkey-metadata and logged with it: it obeys that
# header's rules (server/headers.py). Every one of these was stored as given (or, for a workspace, stored and
# then silently dropped), and a key the log escapes could never be queried again.
KEY_RULE = "must be non-empty, with no control characters, quotes (\") or backslashes (\\)"


def _bad_key(case: str, key: str) -> tuple[str, dict, str]:
    return case, {key: "a"}, f"defaults.metadata: the key {key!r} {KEY_RULE}"


# (case, defaults.metadata, words of the 400)
BAD_DEFAULT_METADATA = [
    _bad_key("a quote in a key", 'te"am'),
    _bad_key("a backslash in a key", "te\\am"),
    _bad_key("a newline in a key", "te\nam"),
    _bad_key("a NUL in a key", "te\x00am"),
    _bad_key("DEL in a key", "te\x7fam"),
    _bad_key("a C1 control in a key", "te\x85am"),
    _bad_key("an empty key", ""),
    ("an object value", {"team": {"a": "b"}}, "value of 'team' must be a string, number, boolean or null"),
    ("a list value", {"team": ["a"]}, "value of 'team' must be a string, number, boolean or null"),
    ("a value past 128 characters", {"team": "x" * 129}, "value of 'team' is longer than 128 characters"),
    ("more than one header can carry", {"k" * 9000: "a"}, "longer than one x-portkey-metadata header can be"),
    ("not an object", "team=a", "defaults.metadata: expected an object"),
]
# Where defaults are accepted: (method, path with {key} or {workspace}, the rest of the body).
DEFAULTS_SURFACES = [
    ("POST", "/v1/api-keys/workspace/service", {"name": "refused", "workspace_id": "default"}),
    ("POST", "/admin/api/api-keys/organisation/service", {"name": "refused"}),
    ("PUT", "/v1/api-keys/{key}", {}),
    ("PATCH", "/admin/api/api-keys/{key}", {}),
    ("POST", "/v1/admin/workspaces", {"name": "refused"}),
    ("PUT", "/v1/admin/workspaces/{workspace}", {}),
    ("PATCH", "/admin/api/workspaces/{workspace}", {}),
]
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def plain(admin: Portkey) -> dict[str, str]:
    """A key and a workspace with no defaults, for the updates below to leave as they are."""
    space = admin.admin.workspaces.create(name="Plain defaults")
    key = admin.api_keys.create(type="workspace", sub_type="service", name="plain", workspace_id=space.id)
    return {"key": key.id, "workspace": space.id}


def _defaults_of(gateway: GatewayProcess, path: str) -> dict:
    shown = httpx.get(f"{gateway.url}{path}", headers=AUTH, timeout=10)
    assert shown.status_code == 200, shown.text
    return shown.json()["defaults"]


@pytest.mark.parametrize(("method", "path", "body"), DEFAULTS_SURFACES, ids=[f"{m} {p}" for m, p, _ in DEFAULTS_SURFACES])
@pytest.mark.parametrize(("case", "metadata", "words"), BAD_DEFAULT_METADATA, ids=[c for c, _, _ in BAD_DEFAULT_METADATA])
def test_default_metadata_follows_the_header_rules(gateway: GatewayProcess, plain: dict[str, str], method: str,
                                                   path: str, body: dict, case: str, metadata, words: str) -> None:
    target = path.format(**plain)
    sent = {**body, "defaults": {"metadata": metadata}}
    answer = httpx.request(method, f"{gateway.url}{target}", headers=AUTH, json=sent, timeout=10)
    assert answer.status_code == 400, (case, answer.text)
    assert words in answer.json()["message"], (case, answer.json()["message"])
    assert "Traceback" not in answer.text
    if method == "POST":  # nothing was made
        kind = "api-keys" if "api-keys" in path else "workspaces"
        listed = httpx.get(f"{gateway.url}/admin/api/{kind}", headers=AUTH, timeout=10).json()["data"]
        assert "refused" not in {item["name"] for item in listed}
    else:  # nothing was changed
        shown = f"/admin/api/api-keys/{plain['key']}" if "{key}" in path else f"/admin/api/workspaces/{plain['workspace']}"
        assert _defaults_of(gateway, shown) == {}


def test_default_metadata_takes_what_the_header_takes(admin: Portkey, gateway: GatewayProcess, upstream) -> None:
    """Numbers, booleans and null, as on x-portkey-metadata: kept as given, logged as text. A key's defaults
    refused them (400), a workspace's were stored and then silently left out of every request."""
    long_key = "k" * 300  # the header takes it too; only what one header cannot carry is refused
    space = admin.admin.workspaces.create(name="Scalar defaults", defaults={"metadata": {"tier": 2, "beta": True}})
    assert space.defaults == {"metadata": {"tier": 2, "beta": True}}
    _private_llm(admin, upstream.v1, space.id, "scalar-llm")
    metadata = {"n": 5, "ratio": 0.5, "gone": None, "big": 2**63, long_key: "v", "équipe": "é"}
    made = admin.api_keys.create(type="workspace", sub_type="service", name="scalars", workspace_id=space.id,
                                 defaults={"metadata": metadata})
    assert _defaults_of(gateway, f"/admin/api/api-keys/{made.id}") == {"metadata": metadata}
    answer = httpx.post(f"{gateway.v1}/chat/completions", timeout=30,
                        headers={"x-portkey-api-key": made.key, "x-portkey-provider": "@scalar-llm"},
                        json={"model": "m", "messages": HELLO})
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 20
    while not (rows := _logs(gateway, ADMIN_TOKEN, api_key_id=made.id).json()["data"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert rows[0]["metadata"] == {"tier": "2", "beta": "true", "n": "5", "ratio": "0.5", "gone": "null",
                                   "big": "9223372036854775808", long_key: "v", "équipe": "é"}


# A field the gateway does not know, misspelt most likely, was ignored: the key or workspace was made or left
# without what it meant (an unrestricted key, one that never expires). (case, body, the field named)
MISSPELT = [
    ("permissions misspelt", {"permision": {"providers": ["team-llm"]}}, "permision"),
    ("expires_at in camelCase", {"expiresAt": "2100-01-01T00:00:00Z"}, "expiresAt"),
    ("scopes in the singular", {"scope": ["completions.write"]}, "scope"),
    ("a default config misspelt", {"defaults": {"config": "pc-x"}}, "defaults.config"),
]


# Every surface with every misspelling, but a workspace's defaults.config: a workspace's defaults are kept as
# given (Portkey's shape).
UNKNOWN_FIELD_CASES = [(surface, misspelt) for surface in DEFAULTS_SURFACES for misspelt in MISSPELT
                       if not ("workspaces" in surface[1] and misspelt[2] == "defaults.config")]


@pytest.mark.parametrize(("surface", "misspelt"), UNKNOWN_FIELD_CASES,
                         ids=[f"{s[0]} {s[1]}-{m[0]}" for s, m in UNKNOWN_FIELD_CASES])
def test_a_field_the_gateway_does_not_know_is_a_400_naming_it(gateway: GatewayProcess, plain: dict[str, str],
                                                             surface: tuple, misspelt: tuple) -> None:
    (method, path, body), (case, fields, named) = surface, misspelt
    target = path.format(**plain)
    before = httpx.get(f"{gateway.url}/admin/api/{'api-keys' if '{key}' in path else 'workspaces'}", headers=AUTH,
                       timeout=10).json()["data"]
    answer = httpx.request(method, f"{gateway.url}{target}", headers=AUTH, json={**body, **fields}, timeout=10)
    assert answer.status_code == 400, (case, answer.text)
    assert answer.json()["message"].startswith(f"{named}: unknown field"), answer.json()["message"]
    kind = "api-keys" if "api-keys" in path else "workspaces"
    after = httpx.get(f"{gateway.url}/admin/api/{kind}", headers=AUTH, timeout=10).json()["data"]
    if method == "POST":  # nothing was made
        assert "refused" not in {item["name"] for item in after}
    else:  # nothing was changed
        assert after == before


def test_portkey_fields_the_gateway_does_not_model_are_taken(admin: Portkey) -> None:
    """A user key's ``user_id`` and a key's ``alert_emails`` (Portkey's), a workspace's ``users``: taken, not
    refused as unknown."""
    space = admin.admin.workspaces.create(name="Portkey fields", users=["someone@example.com"])
    made = admin.api_keys.create(type="workspace", sub_type="user", name="for a user", workspace_id=space.id,
                                 user_id="u-1", alert_emails=["ops@example.com"])
    assert made.key.startswith("sg-")
    admin.api_keys.update(id=made.id, alert_emails=["oncall@example.com"])  # the SDK's update sends the id too


# An expiry that has passed makes a key that can never be used: refused on create, and on update, where
# ending a key now is what revoking is for. (method, path, expires_at, status, words of the message)
EXPIRY = [
    ("POST", "/v1/api-keys/workspace/service", "2001-01-01T00:00:00Z", 400,
     "expires_at: 2001-01-01T00:00:00+00:00 is not in the future; a key must be usable when it is made"),
    ("POST", "/admin/api/api-keys/workspace/service", "2001-01-01T00:00:00", 400, "is not in the future"),
    ("POST", "/v1/api-keys/workspace/service", "one second ago", 400, "is not in the future"),
    ("PUT", "/v1/api-keys/{key}", "2001-01-01T00:00:00+02:00", 400,
     "expires_at: 2001-01-01T00:00:00+02:00 is not in the future; to stop a key now, revoke it"),
    ("PATCH", "/admin/api/api-keys/{key}", "one second ago", 400, "to stop a key now, revoke it"),
    ("POST", "/v1/api-keys/workspace/service", "2100-01-01T00:00:00Z", 200, None),
    ("POST", "/v1/api-keys/workspace/service", "", 200, None),
    ("POST", "/v1/api-keys/workspace/service", None, 200, None),
    ("PUT", "/v1/api-keys/{key}", "2100-01-01T00:00:00Z", 200, None),
    ("PATCH", "/admin/api/api-keys/{key}", "", 200, None),


    # Past the last year a date-time can hold once in UTC: it was a 500 (OverflowError binding it).
    ("POST", "/v1/api-keys/workspace/service", "9999-12-31T23:59:59-12:00", 400, "expires_at: out of range"),
    ("PUT", "/v1/api-keys/{key}", "9999-12-31T23:59:59-12:00", 400, "expires_at: out of range"),
]


@pytest.mark.parametrize(("method", "path", "expires_at", "status", "words"), EXPIRY,
                         ids=[f"{m} {p} {e!r}" for m, p, e, _, _ in EXPIRY])
def test_an_expiry_in_the_past_is_refused(gateway: GatewayProcess, plain: dict[str, str], method: str, path: str,
                                          expires_at: str | None, status: int, words: str | None) -> None:
    from datetime import UTC, datetime, timedelta

    if expires_at == "one second ago":
        expires_at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    body: dict = {"name": "expiring", "workspace_id": "default"} if method == "POST" else {}
    body["expires_at"] = expires_at
    before = httpx.get(f"{gateway.url}/admin/api/api-keys/{plain['key']}", headers=AUTH, timeout=10).json()
    answer = httpx.request(method, f"{gateway.url}{path.format(**plain)}", headers=AUTH, json=body, timeout=10)
    assert answer.status_code == status, answer.text
    if words is not None:
        assert words in answer.json()["message"], answer.json()["message"]
        after = httpx.get(f"{gateway.url}/admin/api/api-keys/{plain['key']}", headers=AUTH, timeout=10).json()
        assert after["expires_at"] == before["expires_at"]  # nothing was changed


# A key may give no key, itself included, more than it has: scopes (the default one too), permissions wider
# than its own, or a longer life than its own. Each of these was a 200: a key made without "scopes" got
# completions.write unchecked, and a key could lift its own provider allow-list or expiry.
def _key(body: dict, token: str = ADMIN_TOKEN, path: str = "/admin/api/api-keys/workspace/service") -> httpx.Response:
    return httpx.post(f"{_GATEWAY_URL[0]}{path}", headers={"authorization": f"Bearer {token}"}, json=body, timeout=10)


_GATEWAY_URL: list[str] = []


@pytest.fixture(scope="module")
def manager(gateway: GatewayProcess) -> dict[str, str]:
    """A workspace key that may create and update keys, restricted to one provider, expiring in 2090."""
    _GATEWAY_URL[:] = [gateway.url]
    made = _key({"name": "manager", "workspace_id": "default", "expires_at": "2090-01-01T00:00:00Z",
                 "scopes": ["workspace_service_api_keys.create", "workspace_service_api_keys.update",
                            "workspace_service_api_keys.read"],
                 "permissions": {"providers": ["pa"], "direct_integration": False}})
    assert made.status_code == 200, made.text
    return made.json()


ESCALATIONS = [
    ("no scopes: the default completions.write", {}, "cannot grant scopes it does not hold: completions.write"),
    ("no permissions: unrestricted", {"scopes": ["workspace_service_api_keys.read"]},
     "cannot grant permissions wider than its own"),
    ("another provider", {"scopes": ["workspace_service_api_keys.read"],
                          "permissions": {"providers": ["pa", "pb"], "direct_integration": False}},
     "cannot grant permissions wider than its own"),
    ("direct integration", {"scopes": ["workspace_service_api_keys.read"],
                            "permissions": {"providers": ["pa"], "direct_integration": True}},
     "cannot grant permissions wider than its own"),
    ("no expiry", {"scopes": ["workspace_service_api_keys.read"],
                   "permissions": {"providers": ["pa"], "direct_integration": False}},
     "must expire no later than this key"),
    ("a later expiry", {"scopes": ["workspace_service_api_keys.read"], "expires_at": "2095-01-01T00:00:00Z",
                        "permissions": {"providers": ["pa"], "direct_integration": False}},
     "must expire no later than this key"),
]


@pytest.mark.parametrize(("case", "body", "words"), ESCALATIONS, ids=[c for c, _, _ in ESCALATIONS])
def test_a_key_cannot_make_a_key_with_more_than_it_has(manager: dict[str, str], case: str, body: dict,
                                                         words: str) -> None:
    answer = _key({"name": "child", **body}, token=manager["key"])
    assert answer.status_code == 403, (case, answer.text)
    assert words in answer.json()["message"], (case, answer.json()["message"])


def test_a_key_may_make_a_key_with_what_it_has(manager: dict[str, str]) -> None:
    answer = _key({"name": "child", "scopes": ["workspace_service_api_keys.read"], "expires_at": "2080-01-01T00:00:00Z",
                   "permissions": {"providers": ["pa"], "models": ["m1"], "direct_integration": False}},
                  token=manager["key"])
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("case", "body", "words"), [
    ("lift its allow-list", {"permissions": {}}, "cannot grant permissions wider than its own"),
    ("allow direct integration", {"permissions": {"providers": ["pa"], "direct_integration": True}},
     "cannot grant permissions wider than its own"),
    ("never expire", {"expires_at": ""}, "must expire no later than this key"),
    ("expire later", {"expires_at": "9999-01-01T00:00:00"}, "must expire no later than this key"),
])
def test_a_key_cannot_lift_its_own_restrictions(gateway: GatewayProcess, manager: dict[str, str], case: str,
                                                body: dict, words: str) -> None:
    own = f"{gateway.url}/admin/api/api-keys/{manager['id']}"
    answer = httpx.put(own, headers={"authorization": f"Bearer {manager['key']}"}, json=body, timeout=10)
    assert answer.status_code == 403, (case, answer.text)
    assert words in answer.json()["message"]
    shown = httpx.get(own, headers=AUTH, timeout=10).json()
    assert shown["permissions"]["providers"] == ["pa"] and shown["expires_at"].startswith("2090-01-01")
    narrower = httpx.put(own, headers={"authorization": f"Bearer {manager['key']}"}, timeout=10,
                         json={"expires_at": "2089-01-01T00:00:00Z"})
    assert narrower.status_code == 200, narrower.text  # a shorter life is its to choose
    httpx.put(own, headers=AUTH, json={"expires_at": "2090-01-01T00:00:00Z"}, timeout=10)


def test_a_slug_that_is_another_workspace_s_id_is_refused(gateway: GatewayProcess, admin: Portkey) -> None:
    # It was taken, and every lookup by that string then found the other workspace (keys landed there).
    team = admin.admin.workspaces.create(name="Team with an id")
    for slug in (team.id, "ws-default"):
        answer = httpx.post(f"{gateway.url}/admin/api/workspaces", headers=AUTH, timeout=10,
                            json={"name": "Shadow", "slug": slug})
        assert answer.status_code == 409, answer.text
        assert answer.json()["message"] == f"Workspace {slug} already exists"
    shown = httpx.get(f"{gateway.url}/admin/api/workspaces/{team.id}", headers=AUTH, timeout=10).json()
    assert shown["name"] == "Team with an id"


# Names are shown as one line, in the CLI's listings among others: ESC, CR, LF, NUL and direction overrides
# were stored as given and printed raw to an admin's terminal. A description may hold lines and tabs.
@pytest.mark.parametrize("name", ["\x1b[31mred\x1b[0m", "a\rb", "a\nb", "a\x00b", "evil\u202eexe.txt", "a\x85b"])
@pytest.mark.parametrize("path", ["/admin/api/api-keys/workspace/service", "/admin/api/workspaces"])
def test_a_name_with_a_control_character_is_refused(gateway: GatewayProcess, path: str, name: str) -> None:
    body = {"name": name, "workspace_id": "default"} if "api-keys" in path else {"name": name}
    answer = httpx.post(f"{gateway.url}{path}", headers=AUTH, timeout=10, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("name: no control characters or direction overrides")


def test_a_description_may_hold_lines_but_no_escape(gateway: GatewayProcess) -> None:
    path = f"{gateway.url}/admin/api/api-keys/workspace/service"
    fine = httpx.post(path, headers=AUTH, timeout=10,
                      json={"name": "Team é 🚀", "workspace_id": "default", "description": "line one\n\tline two"})
    assert fine.status_code == 200, fine.text
    refused = httpx.post(path, headers=AUTH, timeout=10,
                         json={"name": "n", "workspace_id": "default", "description": "\x1b]0;title\x07"})
    assert refused.status_code == 400 and refused.json()["message"] == "description: no control characters"


def test_a_key_s_workspace_cannot_be_changed(gateway: GatewayProcess, plain: dict[str, str], admin: Portkey) -> None:
    # PUT with another workspace_id answered 200 and left the key where it was.
    other = admin.admin.workspaces.create(name="Elsewhere")
    url = f"{gateway.url}/admin/api/api-keys/{plain['key']}"
    moved = httpx.put(url, headers=AUTH, json={"workspace_id": other.id, "name": "moved"}, timeout=10)
    assert moved.status_code == 400, moved.text
    assert moved.json()["message"].startswith("workspace_id: a key stays in the workspace it was made in")
    assert httpx.get(url, headers=AUTH, timeout=10).json()["name"] == "plain"  # nothing changed
    same = httpx.put(url, headers=AUTH, json={"workspace_id": plain["workspace"]}, timeout=10)
    assert same.status_code == 200, same.text  # naming its own workspace is no change


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("value", [True, 0, -1, 1.5, 2**64, [], {}, ["x"], {"a": 1}])
def test_a_key_update_naming_a_workspace_by_anything_but_text_is_a_400(gateway: GatewayProcess,
                                                                       plain: dict[str, str], method, value) -> None:
    # A bool reached the workspace lookup ("argument of type 'bool' is not iterable"), a list the database
    # driver: a 500 each. A key's creation already answered 400.
    answer = httpx.request(method, f"{gateway.url}/admin/api/api-keys/{plain['key']}", headers=AUTH, timeout=10,
                           json={"workspace_id": value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "workspace_id: expected a string (a workspace id or slug)"


# (case, defaults.config_id, words of the 400): a key's default config must be one it can run.
BAD_DEFAULT_CONFIG = [
    ("no such config", "no-such-config", "defaults.config_id: no saved config 'no-such-config'"),
    ("another workspace's config", "elsewhere-config", "defaults.config_id: config 'elsewhere-config' belongs to "
                                                       "another workspace"),
    ("empty", "", "defaults.config_id: expected a saved config id"),
    ("not a string", 7, "defaults.config_id: expected a saved config id"),
    ("a NUL", "a\x00b", "defaults.config_id: no saved config"),
]
# Every surface that sets a key's defaults, with every case; an organisation key may name any workspace's config.
DEFAULT_CONFIG_CASES = [(method, path, body, case, config_id, words)
                        for method, path, body in DEFAULTS_SURFACES if "api-keys" in path
                        for case, config_id, words in BAD_DEFAULT_CONFIG
                        if not ("organisation" in path and "workspace" in case)]


@pytest.fixture(scope="module")
def elsewhere_config(admin: Portkey, gateway: GatewayProcess) -> str:
    other = admin.admin.workspaces.create(name="Config elsewhere")
    made = httpx.post(f"{gateway.url}/admin/api/configs", headers=AUTH, timeout=10,
                      json={"id": "elsewhere-config", "config": {"provider": "openai"}, "workspace_id": other.id})
    assert made.status_code == 201, made.text
    return "elsewhere-config"


@pytest.mark.parametrize(("method", "path", "body", "case", "config_id", "words"), DEFAULT_CONFIG_CASES,
                         ids=[f"{m} {p} {c}" for m, p, _, c, _, _ in DEFAULT_CONFIG_CASES])
def test_a_key_s_default_config_must_exist_in_its_workspace(gateway: GatewayProcess, plain: dict[str, str],
                                                             elsewhere_config: str, method: str, path: str,
                                                             body: dict, case: str, config_id, words: str) -> None:
    # A key made with a mistyped default config was stored, and every request it made then failed with an
    # error about the x-portkey-config header its client never sent.
    sent = {**body, "defaults": {"config_id": config_id}}
    if "workspace/service" in path:
        sent["workspace_id"] = plain["workspace"]
    answer = httpx.request(method, f"{gateway.url}{path.format(**plain)}", headers=AUTH, json=sent, timeout=10)
    assert answer.status_code == 400, (case, answer.text)
    assert answer.json()["message"].startswith(words), (case, answer.json()["message"])
    listed = httpx.get(f"{gateway.url}/admin/api/api-keys", headers=AUTH, timeout=10).json()["data"]
    assert "refused" not in {item["name"] for item in listed}
    assert _defaults_of(gateway, f"/admin/api/api-keys/{plain['key']}") == {}


def test_a_key_s_default_config_cannot_be_deleted_and_a_lost_one_is_named(admin: Portkey, gateway: GatewayProcess,
                                                                           plain: dict[str, str]) -> None:
    made = httpx.post(f"{gateway.url}/admin/api/configs", headers=AUTH, timeout=10,
                      json={"id": "short-lived", "config": {"provider": "openai"}, "workspace_id": plain["workspace"]})
    assert made.status_code == 201, made.text
    key = admin.api_keys.create(type="workspace", sub_type="service", name="by default", workspace_id=plain["workspace"],
                                scopes=["completions.write"], defaults={"config_id": "short-lived"})
    # As for a provider a config names: deleting it made every request of the key a 400.
    deleting = httpx.delete(f"{gateway.url}/admin/api/configs/short-lived", headers=AUTH, timeout=10)
    assert deleting.status_code == 409, deleting.text
    assert deleting.json()["message"] == ("Config short-lived is the default config of 1 active API key(s): change "
                                         "their defaults first")
    # A store written before that rule may still hold such a key: its requests are told which config is gone.
    with sqlite3.connect(gateway.data_dir / "sluicegate.db") as db:
        db.execute("DELETE FROM saved_configs WHERE id = 'short-lived'")
        db.execute("UPDATE catalog_state SET version = version + 1 WHERE id = 1")
    client = Portkey(api_key=key.key, base_url=gateway.v1)
    deadline = time.monotonic() + 15  # the next reload of the catalog
    while True:
        try:
            message = refused(400, client.chat.completions.create, model="m", messages=HELLO)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert "This API key's default config 'short-lived' no longer exists" in message
    admin.api_keys.update(id=key.id, defaults={})  # then it can go


# Every surface that names a key in its path: (method, path with {key}).
KEY_PATHS = [("GET", "/admin/api/api-keys/{key}"), ("PATCH", "/admin/api/api-keys/{key}"),
             ("DELETE", "/admin/api/api-keys/{key}"), ("GET", "/v1/api-keys/{key}"), ("PUT", "/v1/api-keys/{key}"),
             ("DELETE", "/v1/api-keys/{key}"), ("GET", "/admin/api/limits/key/{key}")]


@pytest.mark.parametrize(("method", "path"), KEY_PATHS, ids=[f"{m} {p}" for m, p in KEY_PATHS])
def test_a_key_s_secret_where_its_id_belongs_is_never_echoed(admin: Portkey, gateway: GatewayProcess,
                                                             method: str, path: str) -> None:
    # The 404 said "API key sg-…(the whole secret) not found", to the client and whatever logs answers.
    secret = admin.api_keys.create(type="organisation", sub_type="service", name="pasted", scopes=["logs.list"]).key
    answer = httpx.request(method, f"{gateway.url}{path.format(key=secret)}", headers=AUTH, timeout=10,
                           json={"name": "renamed"} if method in ("PATCH", "PUT") else None)
    assert answer.status_code == 404, answer.text
    assert answer.json()["message"] == "API key not found: the path takes the key's id, never its secret"
    assert secret[3:] not in answer.text


# (case, body of POST /v1/integrations or of PUT /v1/integrations/<slug> when it has "update", words of the 400).
# Each was accepted: a key no header can carry failed later, when a provider was made from it, in words about
# a header; an object for a name was stored as its Python text; a numeric slug became a random one.
BAD_INTEGRATIONS = [
    ("a key with a line break", {"key": "sk-bad\nline-0123"}, "key: must be one line of at most 8192 characters"),
    ("a key too long", {"key": "k" * 20_000}, "key: must be one line of at most 8192 characters"),
    ("a key not text", {"key": 12345}, "key: expected the provider's API key as a string"),
    ("a name that is an object", {"name": {"a": 1}}, "name: expected one line of printable text of 1 to 256"),
    ("a name with a line break", {"name": "two\nlines"}, "name: expected one line of printable text"),
    ("a slug that is a number", {"slug": 0}, "slug: must be 1-63 lowercase letters"),
    ("a description too long", {"description": "d" * 100_000}, "description: expected text of 0 to 4000"),
    ("an unknown configuration", {"configurations": {"custom_host": "http://127.0.0.1:9/v1", "bogus": 1}},
     "configurations.bogus: unknown field (allowed: custom_host, custom_headers)"),
    ("an update of another field", {"update": True, "key": "sk-new-0123456789"}, "key: unknown field (allowed: "
                                                                                  "name, description)"),
    ("an update with a numeric name", {"update": True, "name": 123}, "name: expected one line of printable text"),
]


@pytest.mark.parametrize(("case", "body", "words"), BAD_INTEGRATIONS, ids=[c for c, _, _ in BAD_INTEGRATIONS])
def test_an_integration_is_refused_when_made_with_what_cannot_become_a_provider(gateway: GatewayProcess, case: str,
                                                                                 body: dict, words: str) -> None:
    base = {"ai_provider_id": "openai", "slug": "checked-int", "key": "sk-good-0123456789"}
    url = f"{gateway.url}/v1/integrations"
    if body.pop("update", False):
        made = httpx.post(url, headers=AUTH, json=base, timeout=10)
        assert made.status_code in (200, 201, 409), made.text
        answer = httpx.put(f"{url}/checked-int", headers=AUTH, json=body, timeout=10)
    else:
        answer = httpx.post(url, headers=AUTH, json={**base, "slug": "refused-int", **body}, timeout=10)
    assert answer.status_code == 400, (case, answer.text)
    assert answer.json()["message"].startswith(words), (case, answer.json()["message"])
    listed = httpx.get(url, headers=AUTH, timeout=10).json()["data"]
    assert "refused-int" not in {i["slug"] for i in listed}
    assert all(i["name"] in ("checked-int",) for i in listed if i["slug"] == "checked-int")


def test_a_revoked_key_comes_back_only_as_a_key_its_caller_could_make(gateway: GatewayProcess,
                                                                      manager: dict[str, str]) -> None:
    """A key with only '*_api_keys.update' made a revoked key with wider scopes active again, and a deleted
    workspace's revoked key came back free of its workspace's permissions and limits."""
    powerful = _key({"name": "powerful", "workspace_id": "default", "scopes": ["providers.list", "logs.list"]})
    key_url = f"{gateway.url}/admin/api/api-keys/{powerful.json()['id']}"
    assert httpx.delete(key_url, headers=AUTH, timeout=10).status_code == 200
    back = httpx.put(key_url, headers={"authorization": f"Bearer {manager['key']}"}, json={"status": "active"},
                     timeout=10)
    assert back.status_code == 403 and "cannot grant scopes it does not hold" in back.json()["message"], back.text
    assert httpx.get(key_url, headers=AUTH, timeout=10).json()["status"] == "revoked"

    space = httpx.post(f"{gateway.url}/admin/api/workspaces", headers=AUTH, json={"name": "Gone soon"}).json()
    doomed = _key({"name": "doomed", "workspace_id": space["id"]}).json()
    doomed_url = f"{gateway.url}/admin/api/api-keys/{doomed['id']}"
    assert httpx.delete(doomed_url, headers=AUTH, timeout=10).status_code == 200
    assert httpx.delete(f"{gateway.url}/admin/api/workspaces/{space['id']}", headers=AUTH).status_code == 200
    again = httpx.put(doomed_url, headers=AUTH, json={"status": "active"}, timeout=10)
    assert again.status_code == 409 and "which was deleted" in again.json()["message"], again.text


def test_a_workspace_key_naming_another_workspace_in_the_audit_trail_is_refused(
        gateway: GatewayProcess, admin: Portkey) -> None:
    """As the key listing answers it: a 403 whatever the workspace named, existing or not. It answered 200 with
    the key's own workspace's events, as if they were the other's, and no such workspace was no 404."""
    other = admin.admin.workspaces.create(name="Audited Other")
    auditor = httpx.post(f"{gateway.url}/admin/api/api-keys/workspace/service", headers=AUTH, timeout=10,
                         json={"name": "auditor", "workspace_id": "default", "scopes": ["audit_logs.list"]}).json()
    auth = {"authorization": f"Bearer {auditor['key']}"}
    for path in ("/admin/api/audit-logs", "/v1/audit-logs"):
        answers = [httpx.get(f"{gateway.url}{path}", params={"workspace_id": ref}, headers=auth, timeout=10)
                   for ref in (other.id, other.slug, "no-such-workspace")]
        assert {(a.status_code, a.json()["message"]) for a in answers} == {
            (403, "This API key may only act on its own workspace")}, [a.text for a in answers]
        own = httpx.get(f"{gateway.url}{path}", params={"workspace_id": "default"}, headers=auth, timeout=10)
        assert own.status_code == 200 and {e["workspace_id"] for e in own.json()["data"]} <= {"ws-default"}


def test_a_key_lists_the_key_types_it_may_list_and_learns_nothing_of_other_workspaces(
        gateway: GatewayProcess, admin: Portkey) -> None:
    other = admin.admin.workspaces.create(name="Listed Other")
    _key({"name": "svc", "workspace_id": "default"})
    _key({"name": "usr", "workspace_id": "default"}, path="/admin/api/api-keys/workspace/user")
    reader = _key({"name": "reader", "workspace_id": "default", "scopes": ["workspace_user_api_keys.list"]}).json()
    auth = {"authorization": f"Bearer {reader['key']}"}
    for path in ("/admin/api/api-keys", "/v1/api-keys"):
        listed = httpx.get(f"{gateway.url}{path}", headers=auth, timeout=10).json()["data"]
        assert listed and {k["sub_type"] for k in listed} == {"user"}, listed  # every type came back
    answers = {ref: httpx.get(f"{gateway.url}/v1/api-keys", params={"workspace_id": ref}, headers=auth, timeout=10)
               for ref in (other.id, other.slug, "no-such-workspace")}
    assert {(a.status_code, a.json()["message"]) for a in answers.values()} == {
        (403, "This API key may only act on its own workspace")}  # one answer: no oracle of what exists
    assert httpx.get(f"{gateway.url}/v1/api-keys", params={"workspace_id": "default"}, headers=auth).status_code == 200


@pytest.mark.parametrize("separator", [" ", "\t", " \t ", "  "])
def test_the_admin_api_splits_a_bearer_as_the_inference_routes_do(gateway: GatewayProcess, separator: str) -> None:
    """``Bearer<TAB>token`` is the token on /v1 (where clients send it so); the admin API answered it 401."""
    answer = httpx.get(f"{gateway.url}/admin/api/workspaces", timeout=10,
                       headers={"authorization": f"Bearer{separator}{ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text


def test_a_workspace_key_cannot_widen_the_ssrf_allow_list_of_every_workspace(gateway: GatewayProcess,
                                                                              admin: Portkey, upstream) -> None:
    """A provider's allow entry goes into the guard's one allow-list: a workspace key's ``10.0.0.0/8`` let
    every workspace's requests (and custom hosts) reach the private network."""
    space = admin.admin.workspaces.create(name="Widening")
    made = admin.api_keys.create(type="workspace", sub_type="service", name="catalog", workspace_id=space.id,
                                 scopes=["providers.create", "providers.update", "providers.read"])
    headers = {"authorization": f"Bearer {made.key}"}
    providers = f"{gateway.url}/admin/api/providers"
    widening = {"slug": "widening", "custom_host": "http://10.0.0.5:8000/v1", "allow_entry": "10.0.0.0/8"}
    answer = httpx.post(providers, headers=headers, json=widening, timeout=10)
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"].startswith("allow_entry: an allow entry widens the SSRF allow-list")
    own = httpx.post(providers, headers=headers, json={"slug": "widening", "custom_host": upstream.v1}, timeout=10)
    assert own.status_code == 201, own.text
    patched = httpx.patch(f"{providers}/widening", headers=headers, json={"allow_entry": "0.0.0.0/0"}, timeout=10)
    assert patched.status_code == 403, patched.text
    assert httpx.patch(f"{providers}/widening", headers=headers, json={"allow_entry": None},
                       timeout=10).status_code == 200  # clearing one only narrows
    # Nothing was widened: a private host is still refused for everyone, the admin included.
    private = httpx.post(providers, headers=AUTH, json={"slug": "private", "custom_host": "http://10.0.0.5:8000/v1"},
                         timeout=10)
    assert private.status_code == 400 and "private address" in private.json()["message"], private.text
    admin.providers.delete(slug="widening")
