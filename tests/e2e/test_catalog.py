"""The seed's Option 1 (Model Catalog) end to end: register a private LLM once, call it as @slug.

A real gateway process and the real CLI against one data directory; the fake upstream asserts that the
stored credential arrived and that the client's own credential did not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess

ADMIN = "admin-token-for-tests-0123456789"
STORED = "Bearer stored-secret-9f3a"
PROMPT = "Explain quantum computing in simple terms"


@pytest.fixture(scope="module")
def llm():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, llm):
    process = GatewayProcess(tmp_path_factory.mktemp("catalog"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    cli(process, "providers", "add", "my-private-llm", "--spec", "openai", "--custom-host", llm.v1 + "/",
        "--header", f"Authorization: {STORED}", "--header", "x-org-id: org-1")
    wait_until_usable(process, "@my-private-llm")
    yield process
    process.stop()


@pytest.fixture
def upstream(llm):
    llm.reset()
    return llm


def cli(process: GatewayProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "sluicegate", *args], env=process.env, input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def wait_until_usable(process: GatewayProcess, slug: str, seconds: float = 1.5) -> float:
    """Poll until the running gateway serves ``slug``; the catalog promises well under a second."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        response = httpx.post(f"{process.v1}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                              headers={"x-portkey-provider": slug})
        if response.status_code != 400 or "not found in the catalog" not in response.text:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{slug} not usable after {seconds}s")


def test_seed_option1_python_sdk(gw, upstream):
    portkey = Portkey(api_key="PORTKEY_API_KEY", base_url=gw.v1, provider="@my-private-llm")
    response = portkey.chat.completions.create(
        model="YOUR_MODEL_NAME", messages=[{"role": "user", "content": PROMPT}]
    )
    assert response.choices[0].message.content == f"echo: {PROMPT}"
    assert upstream.last.headers["authorization"] == STORED
    assert upstream.last.headers["x-org-id"] == "org-1"
    assert upstream.last.json()["model"] == "YOUR_MODEL_NAME"


def test_seed_option1_curl(gw, upstream):
    response = httpx.post(f"{gw.v1}/chat/completions", headers={
        "Content-Type": "application/json", "x-portkey-api-key": "PORTKEY_API_KEY",
        "x-portkey-provider": "@my-private-llm",
    }, json={"model": "YOUR_MODEL_NAME", "messages": [{"role": "user", "content": PROMPT}]})
    assert response.status_code == 200 and response.headers["x-portkey-provider"] == "@my-private-llm"
    assert upstream.last.headers["authorization"] == STORED


def test_model_prefix_with_a_plain_openai_client(gw, upstream):
    client = openai.OpenAI(api_key="client-key-must-not-travel", base_url=gw.v1)
    response = client.chat.completions.create(model="@my-private-llm/llama-3", messages=[{"role": "user", "content": "a"}])
    assert response.choices[0].message.content == "echo: a"
    assert upstream.last.json()["model"] == "llama-3"  # the prefix never reaches the model server
    assert upstream.last.headers["authorization"] == STORED


def test_streaming_through_a_catalog_provider(gw, upstream):
    portkey = Portkey(base_url=gw.v1, provider="@my-private-llm")
    stream = portkey.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "s t"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: s t "


def test_catalog_provider_in_a_config_and_the_seed_fallback(gw, upstream):
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": "http://127.0.0.1:9/v1",
                           "forward_headers": ["Authorization"]},
                          {"provider": "@my-private-llm"}]}
    portkey = Portkey(base_url=gw.v1, config=config, Authorization="Bearer client-token")
    response = portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "f"}])
    assert response.get_headers()["last-used-option-index"] == "config.targets[1]"
    assert upstream.last.headers["authorization"] == STORED


def test_unknown_slug(gw, upstream):
    for headers, model in (({"x-portkey-provider": "@nope"}, "m"), ({}, "@nope/m")):
        response = httpx.post(f"{gw.v1}/chat/completions", headers=headers,
                              json={"model": model, "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 400
        assert response.json()["message"] == "Provider @nope not found in the catalog"
    assert upstream.received == []


def test_request_cannot_redirect_stored_credentials(gw, upstream):
    response = httpx.post(f"{gw.v1}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                          headers={"x-portkey-provider": "@my-private-llm",
                                   "x-portkey-custom-host": "http://127.0.0.1:9/v1"})
    assert response.status_code == 400 and "registered host" in response.json()["message"]
    assert upstream.received == []


def test_model_allow_list_and_default_model(gw, upstream):
    cli(gw, "providers", "add", "pinned", "--custom-host", upstream.v1, "--model", "a", "--model", "b",
        "--default-model", "a")
    wait_until_usable(gw, "@pinned")
    upstream.reset()
    refused = httpx.post(f"{gw.v1}/chat/completions", headers={"x-portkey-provider": "@pinned"},
                         json={"model": "c", "messages": [{"role": "user", "content": "x"}]})
    assert refused.status_code == 400 and refused.json()["message"] == "Model 'c' is not available on @pinned"
    ok = httpx.post(f"{gw.v1}/chat/completions", headers={"x-portkey-provider": "@pinned"},
                    json={"messages": [{"role": "user", "content": "x"}]})
    assert ok.status_code == 200 and upstream.last.json()["model"] == "a"


def test_a_models_allow_list_holds_on_passthrough_paths(gw, upstream):
    """A unified endpoint reached as a passthrough path (an encoded slash, a trailing slash) used the stored
    credential for any model. A body to an allow-listed provider must now be JSON naming an allowed model."""
    cli(gw, "providers", "add", "listed", "--custom-host", upstream.v1, "--model", "a", "--model", "b")
    wait_until_usable(gw, "@listed")
    upstream.reset()
    headers = {"x-portkey-provider": "@listed", "content-type": "application/json"}
    refused = "Model 'c' is not available on @listed"
    cases = [  # (path, raw body, content type, status, message)
        ("/chat%2Fcompletions", b'{"model":"c","messages":[]}', "application/json", 400, refused),
        ("/chat/completions/", b'{"model":"c","messages":[]}', "application/json", 400, refused),
        ("/rerank", b'{"model":"a","model":"c"}', "application/json", 400, refused),  # the last one counts
        ("/rerank", b'{"model":7}', "application/json", 400, "'model' must be a string"),
        ("/audio/transcriptions", b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nc\r\n--x--",
         "multipart/form-data; boundary=x", 400, "@listed serves only the models on its allow-list"),
        ("/rerank", b"[1]", "application/json", 400, "@listed serves only the models on its allow-list"),
    ]
    for path, body, content_type, status, message in cases:
        answer = httpx.post(f"{gw.v1}{path}", content=body, headers={**headers, "content-type": content_type})
        assert answer.status_code == status and message in answer.json()["message"], (path, answer.text)
    assert upstream.received == []
    ok = httpx.post(f"{gw.v1}/rerank", content=b'{"model":"c","model":"b","query":"q"}', headers=headers)
    assert ok.status_code == 200, ok.text
    assert upstream.last.body == b'{"model":"b","query":"q"}'  # as checked: no second "model" to act on
    assert httpx.get(f"{gw.v1}/models", headers=headers).status_code == 200  # no body: nothing to check


def test_saved_config_by_id(gw, upstream, tmp_path):
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": "http://127.0.0.1:9/v1"},
                          {"provider": "@my-private-llm"}]}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    cli(gw, "configs", "add", "pc-private-first", "--file", str(path))
    deadline = time.monotonic() + 1.5
    while True:
        portkey = Portkey(base_url=gw.v1, config="pc-private-first")
        try:
            response = portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "c"}])
            break
        except Exception:
            assert time.monotonic() < deadline, "saved config not served within a second and a half"
            time.sleep(0.05)
    assert response.get_headers()["last-used-option-index"] == "config.targets[1]"
    unknown = httpx.post(f"{gw.v1}/chat/completions", headers={"x-portkey-config": "pc-missing"},
                         json={"messages": [{"role": "user", "content": "x"}]})
    assert unknown.status_code == 400 and "pc-missing" in unknown.json()["message"]


def test_admin_api_registration_is_live_at_once(gw, upstream):
    admin = httpx.Client(base_url=f"{gw.url}/admin/api", headers={"Authorization": f"Bearer {ADMIN}"})
    created = admin.post("/providers", json={"slug": "via-api", "spec": "openai", "custom_host": upstream.v1,
                                             "headers": {"Authorization": "Bearer api-secret-12345678"}})
    assert created.status_code in (200, 201), created.text
    assert "api-secret-12345678" not in created.text  # only the masked form ever leaves
    assert wait_until_usable(gw, "@via-api") < 1.0
    assert upstream.last.headers["authorization"] == "Bearer api-secret-12345678"
    assert httpx.get(f"{gw.url}/admin/api/providers").status_code == 401


def test_secrets_never_reach_the_log_or_the_database_in_clear(gw):
    assert STORED.split()[1] not in gw.log()
    for path in gw.data_dir.glob("sluicegate.db*"):
        assert STORED.split()[1].encode() not in path.read_bytes()
