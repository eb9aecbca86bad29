"""The portkey-ai SDK's provider options, as its users set them: each becomes an x-portkey-* header, which the
gateway must turn into what the upstream reads (or into the catalog provider it names). Each was dropped
without a word: the upstream never saw the beta its client asked for, the project to bill, the provider.

A real gateway process, the real portkey-ai SDK (Python; the Node package sends the same headers), scripted
upstreams on loopback.
"""

from __future__ import annotations

import httpx
import pytest
from portkey_ai import Portkey

from tests.e2e.test_catalog import cli, wait_until_usable
from tests.fakes.anthropic_upstream import AnthropicUpstream
from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess

ADMIN = "admin-token-for-sdk-option-tests-01"
STORED = "Bearer stored-secret-for-options-9f2"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def servers():
    chat, messages = FakeUpstream().start(), AnthropicUpstream().start()
    yield chat, messages
    chat.stop()
    messages.stop()


@pytest.fixture
def chat(servers):
    servers[0].reset()
    return servers[0]


@pytest.fixture
def claude(servers):
    servers[1].reset()
    return servers[1]


@pytest.fixture(scope="module")
def gw(tmp_path_factory, servers):
    process = GatewayProcess(tmp_path_factory.mktemp("sdk-options"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    cli(process, "providers", "add", "my-llm", "--spec", "openai", "--custom-host", servers[0].v1,
        "--header", f"Authorization: {STORED}")
    wait_until_usable(process, "@my-llm")
    yield process
    process.stop()


def test_anthropic_beta_and_version_reach_the_upstream(gw, claude):
    client = Portkey(base_url=gw.v1, provider="anthropic", custom_host=claude.v1, Authorization="Bearer ak",
                     anthropic_beta="tools-2024-04-04", anthropic_version="2024-01-01", max_retries=0)
    client.chat.completions.create(model="claude-fake", max_tokens=5, messages=HI)
    sent = claude.last.headers
    assert (sent["anthropic-beta"], sent["anthropic-version"]) == ("tools-2024-04-04", "2024-01-01")


def test_the_openai_project_and_organisation_go_with_the_clients_own_key_only(gw, chat):
    options = {"openai_project": "proj_1", "openai_organization": "org_1", "max_retries": 0}
    Portkey(base_url=gw.v1, provider="openai", custom_host=chat.v1, Authorization="Bearer own", **options
            ).chat.completions.create(model="m", messages=HI)
    sent = chat.last.headers
    assert (sent["openai-project"], sent["openai-organization"]) == ("proj_1", "org_1")
    # A stored credential is used under the account its owner chose: the client does not pick another.
    Portkey(base_url=gw.v1, provider="@my-llm", **options).chat.completions.create(model="m", messages=HI)
    sent = chat.last.headers
    assert sent["authorization"] == STORED and "openai-project" not in sent and "openai-organization" not in sent


@pytest.mark.parametrize("virtual_key", ["my-llm", "@my-llm"])
def test_a_virtual_key_names_the_catalog_provider(gw, chat, virtual_key):
    answer = Portkey(base_url=gw.v1, virtual_key=virtual_key, max_retries=0).chat.completions.create(
        model="m", messages=HI)
    assert answer.choices[0].message.content == "echo: hi"
    assert chat.last.headers["authorization"] == STORED


def test_a_virtual_key_and_another_provider_are_refused(gw, chat):
    refused = httpx.post(f"{gw.v1}/chat/completions", json={"model": "m", "messages": HI}, timeout=30,
                         headers={"x-portkey-virtual-key": "my-llm", "x-portkey-provider": "openai"})
    assert refused.status_code == 400
    assert "x-portkey-virtual-key and x-portkey-provider name different providers" in refused.text
    assert chat.received == []


def test_the_node_packages_placeholder_key_is_no_credential(gw, chat):
    """The portkey-ai Node package's inner OpenAI client sends Bearer DUMMY-KEY when it was given no key."""
    httpx.get(f"{gw.v1}/models", timeout=30, headers={
        "authorization": "Bearer DUMMY-KEY", "x-portkey-provider": "openai", "x-portkey-custom-host": chat.v1})
    assert "authorization" not in chat.last.headers
