"""API keys on /v1, through a real gateway process and the real SDKs: who gets in (401), what they may
use (403), key defaults, isolation between workspaces, and revocation seen within a second."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest
from portkey_ai import Portkey

from sluicegate.settings import Settings
from tests.access.world import World
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Scene:
    gateway: GatewayProcess
    world: World
    upstream: object
    keys: dict[str, tuple[str, str]]  # name → (id, secret)
    spaces: dict[str, str]  # name → workspace id

    def secret(self, name: str) -> str:
        return self.keys[name][1]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, upstream_server) -> Scene:
    data = tmp_path_factory.mktemp("access")
    world = World(Settings(data_dir=data))
    a, b = world.workspace("Team A"), world.workspace("Team B")
    closed = world.workspace("Closed", permissions={"direct_integration": False})
    host = upstream_server.v1
    world.provider("a-llm", host, a)
    world.provider("a-other", host, a)
    world.provider("b-llm", host, b)
    world.config("a-config", {"provider": "@a-llm"}, a)
    world.config("b-config", {"provider": "@b-llm"}, b)
    keys = {
        "a": world.key("a", workspace_id=a, scopes=["completions.write", "logs.list", "logs.view"]),
        "b": world.key("b", workspace_id=b, scopes=["completions.write", "logs.list"]),
        "no-scope": world.key("no-scope", workspace_id=a, scopes=["logs.view"]),
        "expired": world.key("expired", workspace_id=a, expires_at="2100-01-01T00:00:00Z"),
        "revoked": world.key("revoked", workspace_id=a),
        "only-a-llm": world.key("only", workspace_id=a, permissions={"providers": ["@a-llm"]}),
        "only-m1": world.key("m1", workspace_id=a, permissions={"models": ["m1"]}),
        "no-config": world.key("nc", workspace_id=a, permissions={"configs": []}),
        "no-direct": world.key("nd", workspace_id=a, permissions={"direct_integration": False}),
        "closed": world.key("closed", workspace_id=closed),
        "defaults": world.key("defaults", workspace_id=a,
                              defaults={"config_id": "a-config", "metadata": {"team": "a", "env": "key"}}),
        "org": world.key("org", type="organisation"),
    }
    world.revoke(keys["revoked"][0])
    world.expire(keys["expired"][0])
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield Scene(gateway, world, upstream_server, keys, {"a": a, "b": b})
    gateway.stop()


def _post(scene: Scene, headers: dict[str, str], body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{scene.gateway.v1}/chat/completions", headers=headers, json=body or CHAT, timeout=30)


def _direct(scene: Scene) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": scene.upstream.v1}


# (case, key name or literal, extra headers, body, status, words the message must contain)
REFUSED = [
    ("no key", None, {"x-portkey-provider": "@a-llm"}, None, 401, "Missing API key"),
    ("empty x-portkey-api-key (the SDK's default)", "", {"x-portkey-provider": "@a-llm"}, None, 401,
     "Missing API key"),
    ("unknown key", "sg-not-a-real-key-0000000000000000000000000", {"x-portkey-provider": "@a-llm"}, None, 401,
     "Invalid API key"),
    ("not a key at all", "PORTKEY_API_KEY", {"x-portkey-provider": "@a-llm"}, None, 401, "Invalid API key"),
    ("expired", "expired", {"x-portkey-provider": "@a-llm"}, None, 401, "expired"),
    ("revoked", "revoked", {"x-portkey-provider": "@a-llm"}, None, 401, "revoked"),
    ("no completions.write", "no-scope", {"x-portkey-provider": "@a-llm"}, None, 403, "completions.write"),
    ("another workspace's @slug", "a", {"x-portkey-provider": "@b-llm"}, None, 403, "@b-llm"),
    ("another workspace's @slug in the model", "a", {}, {**CHAT, "model": "@b-llm/m1"}, 403, "@b-llm"),
    ("another workspace's config", "a", {"x-portkey-config": "b-config"}, None, 403, "b-config"),
    ("inline config naming another workspace's @slug", "a",
     {"x-portkey-config": '{"strategy": {"mode": "fallback"}, "targets": [{"provider": "@a-llm"}, '
                          '{"provider": "@b-llm"}]}'}, None, 403, "@b-llm"),
    ("provider outside the key's list", "only-a-llm", {"x-portkey-provider": "@a-other"}, None, 403, "@a-other"),
    ("model outside the key's list", "only-m1", {"x-portkey-provider": "@a-llm"}, {**CHAT, "model": "m2"}, 403,
     "'m2'"),
    ("config outside the key's list", "no-config", {"x-portkey-config": "a-config"}, None, 403, "a-config"),
    ("direct integration refused by the key", "no-direct", "direct", None, 403, "direct integration"),
    ("direct integration refused by the workspace", "closed", "direct", None, 403, "direct integration"),
]


@pytest.mark.parametrize("case,key,extra,body,status,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals(scene: Scene, case, key, extra, body, status, words) -> None:
    headers = dict(_direct(scene) if extra == "direct" else extra)
    if key is not None:
        headers["x-portkey-api-key"] = scene.keys[key][1] if key in scene.keys else key
    before = len(scene.upstream.received)
    response = _post(scene, headers, body)
    assert response.status_code == status, (case, response.text)
    message = response.json()["message"]
    assert words in message, (case, message)
    if key:
        assert headers["x-portkey-api-key"] not in response.text
    assert len(scene.upstream.received) == before  # refused before any upstream call


def test_allowed_counterparts(scene: Scene) -> None:
    """The same keys, within their permissions, get through (so the refusals above are about the rule)."""
    ok = [("a", {"x-portkey-provider": "@a-llm"}, None), ("a", {"x-portkey-config": "a-config"}, None),
          ("only-a-llm", {"x-portkey-provider": "@a-llm"}, None), ("only-m1", {"x-portkey-provider": "@a-llm"}, None),
          ("no-direct", {"x-portkey-provider": "@a-llm"}, None), ("org", {"x-portkey-provider": "@b-llm"}, None),
          ("a", _direct(scene), None)]
    for name, extra, body in ok:
        response = _post(scene, {**extra, "x-portkey-api-key": scene.secret(name)}, body)
        assert response.status_code == 200, (name, extra, response.text)


PASSTHROUGH_MODELS = [  # (path, raw body, status, words): a key allowed model m1 only, on passthrough paths
    ("/responses", b'{"model":"m2","input":"hi"}', 403, "'m2'"),  # the provider's default model was checked
    ("/chat%2Fcompletions", b'{"model":"m2","messages":[]}', 403, "'m2'"),
    ("/responses", b'{"model":"m2","model":"m1"}', 200, ""),  # the last one counts, and goes upstream alone
    ("/responses", b'{"model":"m1","model":"m2"}', 403, "'m2'"),
    ("/responses", b"model=m2", 403, "a request with a body must send a JSON object"),
    ("/responses", b'{"model":["m1"]}', 400, "'model' must be a string"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), PASSTHROUGH_MODELS, ids=[f"{p} {b!r}" for p, b, _, _ in
                                                                                      PASSTHROUGH_MODELS])
def test_a_key_s_models_hold_on_passthrough_paths(scene: Scene, path: str, body: bytes, status: int, words: str):
    before = len(scene.upstream.received)
    response = httpx.post(f"{scene.gateway.v1}{path}", content=body, timeout=30, headers={
        "x-portkey-provider": "@a-llm", "x-portkey-api-key": scene.secret("only-m1"),
        "content-type": "application/json"})
    assert response.status_code == status and words in response.text, response.text
    if status == 200:
        assert scene.upstream.received[-1].body == b'{"model":"m1"}'
    else:
        assert len(scene.upstream.received) == before


def test_admin_token_is_an_organisation_key(scene: Scene) -> None:
    response = _post(scene, {"x-portkey-provider": "@b-llm", "x-portkey-api-key": ADMIN_TOKEN})
    assert response.status_code == 200, response.text


def test_seed_option1_portkey_sdk_with_a_key(scene: Scene) -> None:
    """Option 1 (Model Catalog): only the base URL differs from the seed; the key is a real one."""
    portkey = Portkey(api_key=scene.secret("a"), base_url=scene.gateway.v1)
    answer = portkey.chat.completions.create(model="@a-llm/m1", messages=[{"role": "user", "content": "Hello"}])
    assert answer.choices[0].message.content == "echo: Hello"
    received = scene.upstream.last
    assert received.headers["Authorization"] == "Bearer upstream-secret-of-a-llm"
    assert scene.secret("a") not in str(received.headers) and scene.secret("a") not in received.body.decode()


def test_seed_option2_portkey_sdk_with_a_key(scene: Scene) -> None:
    portkey = Portkey(api_key=scene.secret("a"), base_url=scene.gateway.v1, provider="openai",
                      custom_host=scene.upstream.v1 + "/", Authorization="Bearer YOUR_AUTH_TOKEN",
                      forward_headers=["Authorization"])
    answer = portkey.chat.completions.create(model="YOUR_MODEL_NAME", messages=[{"role": "user", "content": "Yo"}])
    assert answer.choices[0].message.content == "echo: Yo"
    assert scene.upstream.last.headers["Authorization"] == "Bearer YOUR_AUTH_TOKEN"


def test_openai_sdk_key_as_bearer_is_consumed(scene: Scene) -> None:
    """The plain openai SDK sends its api_key as Authorization: with our prefix it is the gateway key, and
    never reaches the upstream — not even when the client asks to forward Authorization."""
    client = openai.OpenAI(api_key=scene.secret("a"), base_url=scene.gateway.v1, max_retries=0)
    answer = client.chat.completions.create(model="@a-llm/m1", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content == "echo: Hi"
    assert scene.upstream.last.headers["Authorization"] == "Bearer upstream-secret-of-a-llm"
    direct = openai.OpenAI(api_key=scene.secret("a"), base_url=scene.gateway.v1, max_retries=0,
                           default_headers={**_direct(scene), "x-portkey-forward-headers": "authorization"})
    direct.chat.completions.create(model="m1", messages=[{"role": "user", "content": "Hi"}])
    received = scene.upstream.last
    assert scene.secret("a") not in str(received.headers)
    assert "authorization" not in {name.lower() for name in received.headers}
    passthrough = httpx.get(f"{scene.gateway.v1}/models", timeout=30, headers={
        **_direct(scene), "authorization": f"Bearer {scene.secret('a')}"})
    assert passthrough.status_code == 200, passthrough.text
    assert scene.upstream.last.path == "/v1/models"
    assert "authorization" not in {name.lower() for name in scene.upstream.last.headers}
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="sg-wrong", base_url=scene.gateway.v1, max_retries=0).chat.completions.create(
            model="@a-llm/m1", messages=[{"role": "user", "content": "Hi"}])


def test_a_key_as_x_api_key_on_the_messages_routes_is_consumed(scene: Scene) -> None:
    """On /v1/messages, x-api-key is where Anthropic's curl examples, Claude Code and older anthropic SDKs put
    the api_key: with our prefix it is the gateway key, as a Bearer one is, and never reaches the upstream.
    It was sent there as the credential (Authorization: Bearer sg-…), and alone it was a 401."""
    body = {"model": "m1", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    alone = httpx.post(f"{scene.gateway.v1}/messages", json={**body, "model": "@a-llm/m1"}, timeout=30,
                       headers={"x-api-key": scene.secret("a")})
    assert alone.status_code == 200, alone.text
    assert alone.json()["content"][0]["text"] == "echo: Hi"
    assert scene.upstream.last.headers["Authorization"] == "Bearer upstream-secret-of-a-llm"
    beside = httpx.post(f"{scene.gateway.v1}/messages", json=body, timeout=30, headers={
        **_direct(scene), "x-api-key": scene.secret("b"), "x-portkey-api-key": scene.secret("a"),
        "x-portkey-forward-headers": "x-api-key"})
    assert beside.status_code == 200, beside.text
    received = scene.upstream.last
    assert scene.secret("a") not in str(received.headers) and scene.secret("b") not in str(received.headers)
    assert {"authorization", "x-api-key"}.isdisjoint(name.lower() for name in received.headers)
    wrong = httpx.post(f"{scene.gateway.v1}/messages", json=body, timeout=30,
                       headers={**_direct(scene), "x-api-key": "sg-wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error", wrong.text


def test_anthropic_sdk_key_as_x_api_key_is_consumed(scene: Scene) -> None:
    """The anthropic SDKs (older Python ones, the TypeScript one, Claude Code's ANTHROPIC_API_KEY) send their
    api key as x-api-key, and Portkey's snippets give them the Portkey key: on the Messages routes, with our
    prefix, it is the gateway key (it was refused as missing) and never reaches the upstream, not even
    when the client asks to forward x-api-key."""
    def sdk(key: str, **headers: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=scene.gateway.url, max_retries=0,
                                   default_headers={"X-Api-Key": key, **headers})

    answer = sdk(scene.secret("a")).messages.create(model="@a-llm/m1", max_tokens=16,
                                                    messages=[{"role": "user", "content": "Hi"}])
    assert answer.content[0].text == "echo: Hi"
    assert scene.upstream.last.headers["Authorization"] == "Bearer upstream-secret-of-a-llm"
    counted = sdk(scene.secret("a")).messages.count_tokens(model="@a-llm/m1",
                                                          messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens > 0
    sdk(scene.secret("a"), **_direct(scene), **{"x-portkey-forward-headers": "x-api-key"}).messages.create(
        model="m1", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
    received = scene.upstream.last
    assert scene.secret("a") not in str(received.headers) and scene.secret("a") not in received.body.decode()
    with pytest.raises(anthropic.AuthenticationError):
        sdk("sg-wrong").messages.create(model="@a-llm/m1", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])


def test_key_defaults_config_and_metadata(scene: Scene) -> None:
    """A client that cannot set headers (plain openai SDK) gets the key's default config; the key's
    metadata lies under the request's."""
    client = openai.OpenAI(api_key=scene.secret("defaults"), base_url=scene.gateway.v1, max_retries=0,
                           default_headers={"x-portkey-metadata": '{"env": "request"}'})
    answer = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "cfg"}])
    assert answer.choices[0].message.content == "echo: cfg"
    assert scene.upstream.last.headers["Authorization"] == "Bearer upstream-secret-of-a-llm"  # a-config's @a-llm
    trace = answer.id  # any request; find its log row through the admin API below
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = httpx.get(f"{scene.gateway.url}/admin/api/logs", params={"api_key_id": scene.keys["defaults"][0]},
                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10).json()["data"]
        if rows:
            break
        time.sleep(0.1)
    assert rows, trace
    assert rows[0]["metadata"] == {"team": "a", "env": "request"}
    assert rows[0]["workspace_id"] == scene.spaces["a"]
    named = _post(scene, {"x-portkey-api-key": scene.secret("defaults"), "x-portkey-provider": "@a-other"})
    assert named.status_code == 200, named.text  # a request that names its provider: the default stays out
    assert scene.upstream.last.headers["Authorization"] == "Bearer upstream-secret-of-a-other"


def test_creation_and_revocation_are_seen_within_a_second(scene: Scene) -> None:
    key_id, secret = scene.world.key("short-lived", workspace_id=scene.spaces["a"])
    created_at = time.monotonic()  # written by another process: this server learns it from its poll
    headers = {"x-portkey-provider": "@a-llm", "x-portkey-api-key": secret}
    while (response := _post(scene, headers)).status_code != 200:
        assert response.status_code == 401
        time.sleep(0.02)
    assert time.monotonic() - created_at < 1.0
    scene.world.revoke(key_id)
    revoked_at = time.monotonic()
    while (response := _post(scene, headers)).status_code == 200:
        time.sleep(0.02)
    assert response.status_code == 401 and "revoked" in response.json()["message"]
    assert time.monotonic() - revoked_at < 1.0


def test_a_refusal_is_logged_with_who_asked(scene: Scene) -> None:
    key_id = scene.keys["only-m1"][0]
    trace = f"refused-{time.monotonic_ns()}"
    response = _post(scene, {"x-portkey-provider": "@a-llm", "x-portkey-api-key": scene.secret("only-m1"),
                             "x-portkey-trace-id": trace}, {**CHAT, "model": "m9"})
    assert response.status_code == 403
    deadline = time.monotonic() + 20
    while not (rows := httpx.get(f"{scene.gateway.url}/admin/api/logs", params={"trace_id": trace}, timeout=10,
                                 headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["data"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [(r["status"], r["api_key_id"], r["workspace_id"]) for r in rows] == [(403, key_id, scene.spaces["a"])]
    assert scene.secret("only-m1") not in str(rows)
