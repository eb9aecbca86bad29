"""The seed's Option 1 NodeJS snippet with a real gateway API key, through the npm `portkey-ai` package,
and the plain `openai` package with that key as its apiKey (Authorization: Bearer sg-…, consumed by the
gateway); a revoked key gets a 401 in both."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.gateway import GatewayProcess
from tests.node.test_seed_node import STORED, fakes, lowered, node_dir, private, run_node  # noqa: F401

ADMIN = "node-keys-admin-token-0123456789"


def _cli(gateway: GatewayProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "sluicegate", *args], env=gateway.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, fakes):  # noqa: F811
    process = GatewayProcess(tmp_path_factory.mktemp("node-keys"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    _cli(process, "providers", "add", "my-private-llm", "--spec", "openai", "--custom-host", fakes[0].v1,
         "--header", f"Authorization: {STORED}")
    key = json.loads(_cli(process, "keys", "create", "--name", "node", "--json"))
    yield process, key
    process.stop()


def test_option1_and_the_openai_package_with_a_key(node_dir, keyed, private) -> None:  # noqa: F811
    gateway, key = keyed
    deadline = time.monotonic() + 10  # the running gateway sees the CLI's key and provider within a poll
    while (out := run_node(node_dir, "option1_with_key.mjs", gateway, PORTKEY_API_KEY=key["key"])) != [
            {"content": "echo: Explain quantum computing in simple terms"}, {"content": "echo: openai sdk"}]:
        assert time.monotonic() < deadline, out
        time.sleep(0.2)
    assert [lowered(r)["authorization"] for r in private.received[-2:]] == [STORED, STORED]
    assert key["key"] not in json.dumps([list(r.headers.items()) for r in private.received])
    _cli(gateway, "keys", "revoke", key["id"])
    time.sleep(1.0)
    out = run_node(node_dir, "option1_with_key.mjs", gateway, PORTKEY_API_KEY=key["key"])
    assert [o.get("status") for o in out] == [401, 401], out
    assert "revoked" in out[0]["message"], out  # the portkey-ai package shows the gateway's message


def test_admin_listings_page_as_the_node_package_asks(node_dir, keyed) -> None:  # noqa: F811
    # The npm package pages workspaces in snake_case (current_page, page_size), where the Python one writes
    # camelCase: the listing refused it as an unknown parameter.
    gateway, _ = keyed
    _cli(gateway, "workspaces", "create", "Node Paged")
    out = run_node(node_dir, "admin_lists.mjs", gateway, ADMIN_TOKEN=ADMIN)
    assert {o["name"]: (o.get("total", 0) >= 1, o.get("shown")) for o in out} == {
        "workspaces": (True, 1), "apiKeys": (True, 1), "providers": (True, 1)}, out
