from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.access.admin_token import AdminAuth, ensure_admin_token
from sluicegate.access.workspaces import WorkspaceRepository
from sluicegate.catalog import Catalog, ConfigRepository, ProviderRepository
from sluicegate.errors import ConfigError
from sluicegate.server.admin import ADMIN_PREFIX, AdminServices, admin_app

from ..catalog.helpers import API_KEY, SECRET

P = f"{ADMIN_PREFIX}/providers"
C = f"{ADMIN_PREFIX}/configs"
PROVIDER = {
    "slug": "my-llm",
    "spec": "openai",
    "custom_host": "https://llm.example.com/v1",
    "headers": {"Authorization": SECRET, "x-api-key": API_KEY},
    "models": ["llama-3"],
    "default_model": "llama-3",
}


def strict_validator(text: str) -> None:
    if '"loadbalance"' in text:
        raise ConfigError(["strategy: loadbalance targets need a weight"])


class Admin:
    """A test client that remembers every response body, to prove no secret ever left."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.token, self.bodies = client, token, []

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        response = await self.client.request(method, path, data=data, headers=sent)
        text = await response.text()
        self.bodies.append(text)
        assert response.content_type == "application/json", text
        return response.status, orjson.loads(text)


@pytest.fixture
async def admin(engine, vault) -> AsyncIterator[Admin]:
    token = await ensure_admin_token(engine, None)
    assert token is not None
    catalog = Catalog(engine, vault)
    await catalog.start()
    services = AdminServices(
        providers=ProviderRepository(engine, vault),
        configs=ConfigRepository(engine, validate=strict_validator),
        auth=AdminAuth(engine),
        engine=engine,
        on_write=catalog.refresh,
    )
    root = web.Application()
    root.add_subapp(ADMIN_PREFIX, admin_app(services))
    async with TestClient(TestServer(root)) as client:
        helper = Admin(client, token)
        helper.catalog = catalog  # type: ignore[attr-defined]
        yield helper
        for body in helper.bodies:
            assert SECRET not in body and API_KEY not in body and "PLAINTEXT" not in body


async def test_provider_lifecycle(admin: Admin) -> None:
    status, created = await admin.call("POST", P, PROVIDER)
    assert status == 201, created
    assert created["headers"] == {"Authorization": "Bearer sk-…2e1b", "x-api-key": "xk-…alue"}
    assert created["slug"] == "my-llm" and created["models"] == ["llama-3"] and created["notes"] == ""
    assert admin.catalog.resolve("my-llm") is not None  # served at once, before any poll
    assert await admin.call("GET", f"{P}/my-llm") == (200, created)
    status, listed = await admin.call("GET", P)
    assert status == 200 and listed == {"providers": [created]}
    status, patched = await admin.call(
        "PATCH",
        f"{P}/my-llm",
        {"headers": {"x-api-key": None, "X-Org": "org-1234567890abcdef"}, "notes": "gpu box"},
    )
    assert status == 200, patched
    assert patched["headers"] == {"Authorization": "Bearer sk-…2e1b", "X-Org": "org…cdef"}
    assert patched["notes"] == "gpu box" and patched["custom_host"] == PROVIDER["custom_host"]
    assert dict(admin.catalog.resolve("my-llm").headers) == {
        "Authorization": SECRET,
        "X-Org": "org-1234567890abcdef",
    }
    status, cleared = await admin.call(
        "PATCH", f"{P}/my-llm", {"models": None, "default_model": None, "notes": None}
    )
    assert (
        status == 200
        and cleared["models"] == []
        and cleared["default_model"] is None
        and cleared["notes"] == ""
    )
    assert await admin.call("DELETE", f"{P}/my-llm") == (
        200,
        {"status": "success", "message": "Provider @my-llm deleted"},
    )
    assert admin.catalog.resolve("my-llm") is None


async def test_config_lifecycle(admin: Admin) -> None:
    await admin.call("POST", P, PROVIDER)
    status, created = await admin.call(
        "POST", C, {"id": "prod", "config": {"provider": "@my-llm"}, "notes": "n"}
    )
    assert status == 201, created
    assert orjson.loads(created["config"]) == {"provider": "@my-llm"} and created["notes"] == "n"
    assert admin.catalog.saved_config("prod") == created["config"]
    status, text_form = await admin.call(
        "PUT", f"{C}/prod", {"config": '{"provider":"@my-llm","retry":{"attempts":2}}'}
    )
    assert status == 200 and text_form["config"] == '{"provider":"@my-llm","retry":{"attempts":2}}'
    assert text_form["notes"] == "n"
    assert (await admin.call("GET", C))[1] == {"configs": [text_form]}
    assert await admin.call("GET", f"{C}/prod") == (200, text_form)
    status, refused = await admin.call("DELETE", f"{P}/my-llm")
    assert (status, refused["message"]) == (409, "Provider @my-llm is used by saved config(s): prod")
    assert (await admin.call("DELETE", f"{C}/prod"))[0] == 200
    assert admin.catalog.saved_config("prod") is None
    assert (await admin.call("DELETE", f"{P}/my-llm"))[0] == 200


UNAUTHENTICATED = [
    ({}, "Missing admin token: send Authorization: Bearer <admin token>"),
    ({"Authorization": "Bearer wrong-token-value"}, "Invalid admin token"),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "Missing admin token"),
    ({"Authorization": "Bearer"}, "Missing admin token"),
    ({"x-portkey-api-key": "whatever"}, "Invalid admin token"),  # the portkey-ai SDK sends its key here
]
ROUTES = [("GET", P), ("POST", P), ("DELETE", f"{P}/x"), ("PUT", f"{C}/x"), ("GET", f"{ADMIN_PREFIX}/nope")]


async def test_unauthenticated_is_401(admin: Admin) -> None:
    for headers, message in UNAUTHENTICATED:
        for method, path in ROUTES:
            response = await admin.client.request(method, path, headers=headers, data=b"{}")
            case = f"{method} {path} {headers}"
            assert response.status == 401, case
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="sluicegate-admin"', case
            body = await response.json()
            assert body["status"] == "failure" and body["message"].startswith(message), case


async def test_env_token(engine) -> None:
    auth = AdminAuth(engine, env_token="an-operator-chosen-token")
    assert await auth.check("an-operator-chosen-token")
    assert (
        not await auth.check("an-operator-chosen-tokeN")
        and not await auth.check("")
        and not await auth.check(None)
    )


async def test_a_token_that_is_not_utf8_does_not_match(engine) -> None:
    """Header bytes that are not UTF-8 arrive as lone surrogates; hashing them raised (a 500 on every surface)."""
    await ensure_admin_token(engine, None)
    for auth in (AdminAuth(engine, env_token="an-operator-chosen-token"), AdminAuth(engine)):
        assert not await auth.check("\udcff\udcfe\udc80") and not await auth.check("\udcc3(abc")


BAD_PROVIDER_POSTS = [
    (b"{not json", 400, "body: not valid JSON"),
    (b"[1, 2]", 400, "body: expected a JSON object"),
    (b'"text"', 400, "body: expected a JSON object"),
    (
        {**PROVIDER, "bogus": 1},
        400,
        "bogus: unknown field (allowed: slug, headers, spec, custom_host, models, default_model, "
        "forward_headers, allow_entry, notes)",
    ),
    (
        {**PROVIDER, "slug": "My_LLM"},
        400,
        "slug: must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit "
        "(got 'My_LLM')",
    ),
    ({**PROVIDER, "slug": 5}, 400, "slug: must be 1-63 lowercase"),
    ({k: v for k, v in PROVIDER.items() if k != "slug"}, 400, "slug: must be 1-63 lowercase"),
    ({**PROVIDER, "custom_host": None}, 400, "custom_host: required, an http:// or https:// URL"),
    ({**PROVIDER, "custom_host": ["x"]}, 400, "custom_host: required"),
    (
        {**PROVIDER, "custom_host": "file:///etc/passwd"},
        400,
        "custom_host: must be an http:// or https:// URL with a host (got 'file:///etc/passwd')",
    ),
    (  # urlsplit itself refuses an unclosed IPv6 bracket: this was a 500
        {**PROVIDER, "custom_host": "http://[::1/v1"},
        400,
        "custom_host: must be an http:// or https:// URL with a host (got 'http://[::1/v1')",
    ),
    (
        {**PROVIDER, "custom_host": "https://u:p@h/v1"},
        400,
        "custom_host: credentials in the URL are not allowed; put them in an auth header",
    ),
    ({**PROVIDER, "spec": "cohere"}, 400, "spec: unknown API spec 'cohere' (supported: openai, anthropic)"),
    (
        {**PROVIDER, "headers": ["Authorization: x"]},
        400,
        "headers: expected an object of header name to value",
    ),
    ({**PROVIDER, "headers": {"Bad Name": "x"}}, 400, "headers: invalid header name 'Bad Name'"),
    ({**PROVIDER, "headers": {"X-Key": 12}}, 400, "headers: value of 'X-Key' must be a non-empty string"),
    ({**PROVIDER, "headers": {"X-Key": None}}, 400, "headers: value of 'X-Key' must be a non-empty string"),
    (
        {**PROVIDER, "headers": {"X-Key": "a\nb"}},
        400,
        "headers: value of 'X-Key' has control characters or is longer than 8192",
    ),
    ({**PROVIDER, "models": "llama-3"}, 400, "models: expected a list of strings"),
    ({**PROVIDER, "models": [1]}, 400, "models: entries must be non-empty strings up to 256 characters"),
    ({**PROVIDER, "default_model": "gpt-4o"}, 400, "default_model: 'gpt-4o' is not in models"),
    ({**PROVIDER, "forward_headers": "authorization"}, 400, "forward_headers: expected a list of strings"),
    (
        {**PROVIDER, "allow_entry": 3},
        400,
        "allow_entry: must be a host name, *.domain, IP address or CIDR block",
    ),
    ({**PROVIDER, "notes": {}}, 400, "notes: expected a string"),
    # Stored as typed, these made a provider no workspace's key could use ("belongs to another workspace").
    ({**PROVIDER, "workspace_id": "no-such-workspace"}, 404, "Workspace no-such-workspace not found"),
    ({**PROVIDER, "workspace_id": 5}, 400, "workspace_id: expected a workspace id or slug"),
    ({**PROVIDER, "workspace_id": ""}, 400, "workspace_id: expected a workspace id or slug"),
]


async def test_bad_provider_posts(admin: Admin) -> None:
    for body, status, message in BAD_PROVIDER_POSTS:
        raw = body if isinstance(body, bytes) else None
        got_status, got = await admin.call("POST", P, None if raw else body, raw=raw)
        assert (got_status, got["status"]) == (status, "failure"), (body, got)
        assert got["message"].startswith(message), (body, got["message"])
    assert (await admin.call("GET", P))[1] == {"providers": []}


BAD_REQUESTS = [
    ("POST", P, PROVIDER, 409, "Provider @my-llm already exists"),
    ("GET", f"{P}/ghost", None, 404, "Provider @ghost not found in the catalog"),
    ("PATCH", f"{P}/ghost", {"notes": "x"}, 404, "Provider @ghost not found in the catalog"),
    ("DELETE", f"{P}/ghost", None, 404, "Provider @ghost not found in the catalog"),
    ("GET", f"{P}/Bad_Slug", None, 400, "slug: must be 1-63 lowercase"),
    ("PATCH", f"{P}/my-llm", {"slug": "new"}, 400, "slug: cannot be changed"),
    ("PATCH", f"{P}/my-llm", {"custom_host": None}, 400, "custom_host: cannot be null"),
    ("PATCH", f"{P}/my-llm", {"spec": None}, 400, "spec: cannot be null"),
    ("PATCH", f"{P}/my-llm", {"nope": 1}, 400, "nope: unknown field"),
    (
        "PATCH",
        f"{P}/my-llm",
        {"headers": {"Host": "evil"}},
        400,
        "headers: 'Host' is set by the gateway itself",
    ),
    (
        "PATCH",
        f"{P}/my-llm",
        {"headers": {"A": "1", "a": "2"}},
        400,
        "headers: the same header is given twice",
    ),
    ("PATCH", f"{P}/my-llm", {"models": ["other"]}, 400, "default_model: 'llama-3' is not in models"),
    ("PATCH", f"{P}/my-llm", [], 400, "body: expected a JSON object"),
    (
        "POST",
        C,
        {"id": "c1", "config": {"provider": "@ghost"}},
        400,
        "Provider @ghost not found in the catalog",
    ),
    ("POST", C, {"id": "c1", "config": 5}, 400, "config: required, a JSON object (or its text)"),
    ("POST", C, {"id": "c1", "config": "{broken"}, 400, "config: not valid JSON"),
    ("POST", C, {"id": "c1", "config": "[]"}, 400, "config: expected a JSON object"),
    ("POST", C, {"config": {}}, 400, "id: required, a string"),
    ("POST", C, {"id": "C 1", "config": {}}, 400, "id: must be 1-63 lowercase"),
    (
        "POST",
        C,
        {"id": "c1", "config": {}, "extra": 1},
        400,
        "extra: unknown field (allowed: id, config, notes)",
    ),
    (
        "POST",
        C,
        {"id": "c1", "config": {"provider": "openai", "api_key": "sk-1"}},
        400,
        "config.api_key: credentials cannot be stored",
    ),
    ("POST", C, {"id": "c1", "config": {"strategy": {"mode": "loadbalance"}}}, 400, "Invalid config passed"),
    ("POST", C, {"id": "c1", "config": {}, "workspace_id": "no-such-workspace"}, 404,
     "Workspace no-such-workspace not found"),
    ("POST", C, {"id": "c1", "config": {}, "workspace_id": ["ws-default"]}, 400,
     "workspace_id: expected a workspace id or slug"),
    ("GET", f"{C}/ghost", None, 404, "Config ghost not found"),
    ("PUT", f"{C}/ghost", {"config": {}}, 404, "Config ghost not found"),
    ("PUT", f"{C}/ghost", {"id": "x", "config": {}}, 400, "id: unknown field"),
    ("DELETE", f"{C}/ghost", None, 404, "Config ghost not found"),
    ("GET", f"{ADMIN_PREFIX}/nothing-here", None, 404, "Not Found"),
    ("PUT", P, {}, 405, "Method Not Allowed"),
]


async def test_bad_requests(admin: Admin) -> None:
    """Each row: the request, the status and the start of the message; nothing is changed by any of them."""
    assert (await admin.call("POST", P, PROVIDER))[0] == 201
    before = await admin.call("GET", P)
    for method, path, body, status, message in BAD_REQUESTS:
        got_status, got = await admin.call(method, path, body)
        assert (got_status, got["status"]) == (status, "failure"), (method, path, body, got)
        assert got["message"].startswith(message), (method, path, body, got["message"])
    assert await admin.call("GET", P) == before and (await admin.call("GET", C))[1] == {"configs": []}


async def test_a_workspace_named_by_slug_is_stored_by_its_id(admin: Admin, engine) -> None:
    """As /v1/providers and /v1/configs take it: the slug used to be stored as typed."""
    space = await WorkspaceRepository(engine).create({"name": "Team A"}, actor="t")
    status, provider = await admin.call("POST", P, {**PROVIDER, "workspace_id": "team-a"})
    assert (status, provider["workspace_id"]) == (201, space["id"]), provider
    status, config = await admin.call("POST", C, {"id": "c1", "config": {"provider": "@my-llm"},
                                                  "workspace_id": "team-a"})
    assert (status, config["workspace_id"]) == (201, space["id"]), config
    status, by_id = await admin.call("POST", C, {"id": "c2", "config": {}, "workspace_id": space["id"]})
    assert (status, by_id["workspace_id"]) == (201, space["id"]), by_id


async def test_a_listing_is_narrowed_to_the_workspace_named(admin: Admin, engine) -> None:
    # ?workspace_id= was ignored: every workspace's providers and configs came back, an unknown one too.
    space = await WorkspaceRepository(engine).create({"name": "Team B"}, actor="t")
    assert (await admin.call("POST", P, {**PROVIDER, "workspace_id": "team-b"}))[0] == 201
    assert (await admin.call("POST", P, {**PROVIDER, "slug": "elsewhere"}))[0] == 201
    assert (await admin.call("POST", C, {"id": "cb", "config": {}, "workspace_id": space["id"]}))[0] == 201
    assert (await admin.call("POST", C, {"id": "cx", "config": {}}))[0] == 201
    for query in ("team-b", space["id"]):
        status, listed = await admin.call("GET", f"{P}?workspace_id={query}")
        assert (status, [p["slug"] for p in listed["providers"]]) == (200, [PROVIDER["slug"]])
        status, listed = await admin.call("GET", f"{C}?workspace_id={query}")
        assert (status, [c["id"] for c in listed["configs"]]) == (200, ["cb"])
    assert len((await admin.call("GET", P))[1]["providers"]) == 2  # no filter: every one
    status, body = await admin.call("GET", f"{P}?workspace_id=nope")
    assert status == 404 and "nope" in body["message"]


async def test_config_errors_carry_the_validator_paths(admin: Admin) -> None:
    status, body = await admin.call("POST", C, {"id": "lb", "config": {"strategy": {"mode": "loadbalance"}}})
    assert status == 400 and body["errors"] == ["strategy: loadbalance targets need a weight"]


async def test_huge_body_is_413(admin: Admin) -> None:
    status, body = await admin.call("POST", P, raw=b"{" + b" " * (1024 * 1024 + 1) + b"}")
    assert status == 413 and body["message"].startswith("body: larger than")


async def test_an_anthropic_spec_provider_is_registered_and_resolved(admin: Admin) -> None:
    body = {**PROVIDER, "slug": "claude-box", "spec": "anthropic", "headers": {"x-api-key": API_KEY}}
    status, created = await admin.call("POST", P, body)
    assert status == 201 and created["spec"] == "anthropic", created
    resolved = admin.catalog.resolve("claude-box")
    assert resolved is not None and resolved.spec == "anthropic"
    assert dict(resolved.headers) == {"x-api-key": API_KEY}
