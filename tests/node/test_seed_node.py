"""The seed's NodeJS snippets as real node scripts, through the real npm packages `portkey-ai` and `openai`.

The scripts (tests/node/scripts) are the seed's code with only the base URL and the model server's
address changed; they run with the machine's `node` against a real gateway process, a scripted private
model server and a "commercial" fake standing in for api.openai.com. The packages are installed outside
the clone and cached (tests/node/install.py); the tests skip only when node/npm are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_catalog import wait_until_usable
from tests.fakes.upstream import FakeUpstream, Reply, chat_chunks
from tests.gateway import GatewayProcess
from tests.node.install import ensure

SCRIPTS = Path(__file__).parent / "scripts"
ADMIN = "node-suite-admin-token-0123456789"
STORED = "Bearer stored-catalog-secret-4e1d"
PRIVATE = {"authorization": "Bearer sk_live_private_0a1b2c", "x-api-key": "sensitive-key-value-77",
           "x-custom-token": "custom-token-value-88"}


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory) -> Path:
    sdks = ensure()
    if not sdks.ok:
        if "not found on PATH" in sdks.reason:
            pytest.skip(sdks.reason)
        pytest.fail(sdks.reason)
    work = tmp_path_factory.mktemp("node")
    (work / "node_modules").symlink_to(sdks.node_modules, target_is_directory=True)
    for script in SCRIPTS.iterdir():
        shutil.copy(script, work / script.name)
    return work


@pytest.fixture(scope="module")
def fakes():
    servers = [FakeUpstream().start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def private(fakes):
    fakes[0].reset()
    return fakes[0]


@pytest.fixture
def commercial(fakes):
    fakes[1].reset()
    return fakes[1]


@pytest.fixture(scope="module")
def gw(tmp_path_factory, fakes):
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN, "SLUICEGATE_PROVIDER_URL_OPENAI": fakes[1].v1}
    process = GatewayProcess(tmp_path_factory.mktemp("node-gw"), env=env).start()
    added = subprocess.run(
        [sys.executable, "-m", "sluicegate", "providers", "add", "my-private-llm", "--spec", "openai",
         "--custom-host", fakes[0].v1 + "/", "--header", f"Authorization: {STORED}"],
        env=process.env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    wait_until_usable(process, "@my-private-llm", seconds=10)
    yield process
    process.stop()


def run_node(node_dir: Path, script: str, gw: GatewayProcess, **env: str) -> list[dict]:
    result = subprocess.run(["node", script], cwd=node_dir, capture_output=True, text=True, timeout=60,
                            env={"PATH": __import__("os").environ["PATH"], "GATEWAY_URL": gw.v1, **env})
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def lowered(received) -> dict[str, str]:
    return {name.lower(): value for name, value in received.headers.items()}


def test_option1_catalog_slug(node_dir, gw, private):
    out = run_node(node_dir, "option1_catalog.mjs", gw)
    assert out == [{"content": "echo: Explain quantum computing in simple terms"}, {"streamed": "echo: stream me "}]
    assert [lowered(r)["authorization"] for r in private.received] == [STORED, STORED]
    assert private.last.json()["model"] == "YOUR_MODEL_NAME"


def test_option2_direct(node_dir, gw, private):
    out = run_node(node_dir, "option2_direct.mjs", gw, MODEL_SERVER_URL=private.v1 + "/")
    assert out == [{"content": "echo: Explain quantum computing in simple terms"}, {"streamed": "echo: stream me "}]
    assert [lowered(r)["authorization"] for r in private.received] == ["Bearer YOUR_AUTH_TOKEN"] * 2
    assert [r.path for r in private.received] == ["/v1/chat/completions"] * 2


def test_forward_headers_tab(node_dir, gw, private):
    """The Node SDK lists `Authorization,xApiKey,xOrgId` and sends `x-api-key`/`x-org-id`: all three arrive."""
    out = run_node(node_dir, "forward_headers_tab.mjs", gw, MODEL_SERVER_URL=private.v1 + "/")
    assert out == [{"content": "echo: Hello!"}]
    sent = lowered(private.last)
    assert (sent.get("authorization"), sent.get("x-api-key"), sent.get("x-org-id")) == (
        "Bearer sk_live_xxxxx", "sensitive-key-value", "org-12345")
    assert not [name for name in sent if name.startswith("x-portkey-")]


def seed_config(private_host: str) -> str:
    return json.dumps({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai", "custom_host": private_host,
         "forward_headers": ["Authorization", "x-api-key", "x-custom-token"]},
        {"provider": "openai", "api_key": "sk-xxxxx-commercial"}]})


def test_config_forward_headers_reach_the_private_target(node_dir, gw, private, commercial):
    out = run_node(node_dir, "config_forward_headers.mjs", gw, GATEWAY_CONFIG=seed_config(private.v1))
    assert out == [{"content": "echo: Hello!"}, {"streamed": "echo: stream me "}]
    for received in private.received:
        sent = lowered(received)
        assert {name: sent.get(name) for name in PRIVATE} == PRIVATE
    assert commercial.received == []


def test_config_commercial_fallback_gets_no_private_header(node_dir, gw, private, commercial):
    private.push(Reply(status=503, json={"error": {"message": "down"}}), Reply(status=503, json={}))
    out = run_node(node_dir, "config_forward_headers.mjs", gw, GATEWAY_CONFIG=seed_config(private.v1))
    assert out == [{"content": "echo: Hello!"}, {"streamed": "echo: stream me "}]
    assert len(commercial.received) == 2
    for received in commercial.received:
        text = json.dumps(list(received.headers.items()))
        assert lowered(received)["authorization"] == "Bearer sk-xxxxx-commercial"
        assert [v for v in PRIVATE.values() if v.split()[-1] in text] == []


def test_default_import_as_the_seed_writes_it(node_dir, gw, private):
    """`import Portkey from 'portkey-ai'` gives the CommonJS exports object: `new Portkey()` is a TypeError
    in plain Node ESM (docs/configuration.md, "Node.js"); `Portkey.Portkey` and the named import work."""
    out = run_node(node_dir, "default_import.mjs", gw, MODEL_SERVER_URL=private.v1)
    assert out == [{"constructed": False, "error": "TypeError: Portkey is not a constructor"},
                   {"content": "echo: default import"}]


def test_commonjs_require(node_dir, gw, private):
    assert run_node(node_dir, "commonjs_require.cjs", gw, MODEL_SERVER_URL=private.v1) == [
        {"content": "echo: commonjs"}]


def test_openai_node_sdk(node_dir, gw, private):
    out = run_node(node_dir, "openai_sdk.mjs", gw, MODEL_SERVER_URL=private.v1)
    assert out == [{"content": "echo: openai sdk"}, {"streamed": "echo: stream me "}]
    assert lowered(private.last)["authorization"] == "Bearer YOUR_AUTH_TOKEN"


def test_a_stream_cut_after_its_start_raises_in_both_node_packages(node_dir, gw, private):
    cut = Reply(stream=chat_chunks("alpha beta gamma"), drop_after=3)  # the role chunk, then two words
    private.push(cut, cut)
    out = run_node(node_dir, "broken_stream.mjs", gw, MODEL_SERVER_URL=private.v1)
    assert [(o["name"], o["text"], o["raised"]) for o in out] == [
        ("portkey-ai", "alpha beta ", "APIError"), ("openai", "alpha beta ", "APIError")]
    assert all("upstream stream failed" in o["message"] for o in out), out
