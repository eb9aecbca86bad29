"""The seed's "Securely Forwarding Sensitive Headers" and "Using Forward Headers in Gateway Configs".

Real gateway process, the real portkey-ai SDK and raw HTTP (what the Node SDK sends, byte for byte: its
own suite is tests/node), a scripted private model server and a "commercial" fake standing in for
api.openai.com (SLUICEGATE_PROVIDER_URL_OPENAI). The commercial fake must receive none of the private
headers, under any name, and no private value may reach the request log.
"""

from __future__ import annotations

import json

import httpx
import pytest
from portkey_ai import Portkey

from tests.fakes.upstream import FakeUpstream, Reply
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hello!"}]}
PRIVATE = {"authorization": "Bearer sk_live_private_0a1b2c", "x-api-key": "sensitive-key-value-77",
           "x-custom-token": "custom-token-value-88", "x-org-id": "org-12345-private"}


def seed_config(private_host: str) -> dict:
    """The seed's config, its custom host pointed at the fake and its // comment dropped (not JSON)."""
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "custom_host": private_host,
             "forward_headers": ["Authorization", "x-api-key", "x-custom-token"]},
            {"provider": "openai", "api_key": "sk-xxxxx-commercial"},
        ],
    }


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
    env = {"SLUICEGATE_PROVIDER_URL_OPENAI": fakes[1].v1, "SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    process = GatewayProcess(tmp_path_factory.mktemp("forward"), env=env).start()
    yield process
    process.stop()


def lowered(received) -> dict[str, str]:
    return {name.lower(): value for name, value in received.headers.items()}


def assert_nothing_private(received) -> None:
    text = json.dumps(list(received.headers.items())) + received.body.decode(errors="replace")
    leaked = [value for value in PRIVATE.values() if value in text or value.split()[-1] in text]
    assert leaked == [], f"the commercial target received private values: {leaked}"


def sdk_client(gw, config, **extra) -> Portkey:
    return Portkey(base_url=gw.v1, config=config, Authorization=PRIVATE["authorization"],
                   x_api_key=PRIVATE["x-api-key"], x_custom_token=PRIVATE["x-custom-token"], **extra)


def test_config_target_finds_the_sdks_prefixed_headers(gw, private, commercial):
    """The SDK sends unlisted custom kwargs as x-portkey-x-api-key: the target's list must still find them."""
    sdk_client(gw, seed_config(private.v1)).chat.completions.create(**CHAT)
    sent = lowered(private.last)
    assert {name: sent.get(name) for name in ("authorization", "x-api-key", "x-custom-token")} == {
        "authorization": PRIVATE["authorization"], "x-api-key": PRIVATE["x-api-key"],
        "x-custom-token": PRIVATE["x-custom-token"]}
    assert not [name for name in sent if name.startswith("x-portkey-")]
    assert commercial.received == []


def test_commercial_fallback_receives_no_private_header(gw, private, commercial):
    private.push(Reply(status=503, json={"error": {"message": "private LLM down"}}))
    response = sdk_client(gw, seed_config(private.v1)).chat.completions.create(**CHAT)
    assert response.get_headers()["last-used-option-index"] == "config.targets[1]"
    assert lowered(private.last)["x-api-key"] == PRIVATE["x-api-key"]
    assert lowered(commercial.last)["authorization"] == "Bearer sk-xxxxx-commercial"
    assert_nothing_private(commercial.last)


def test_client_list_does_not_reach_a_target_with_its_own_list_or_key(gw, private, commercial):
    """The old workaround (list the header on the client too) must not send it to the commercial target."""
    private.push(Reply(status=503, json={"error": {"message": "down"}}))
    client = sdk_client(gw, seed_config(private.v1), forward_headers=["Authorization", "x_api_key", "x_custom_token"])
    client.chat.completions.create(**CHAT)
    assert lowered(private.last)["x-custom-token"] == PRIVATE["x-custom-token"]
    assert lowered(commercial.last)["authorization"] == "Bearer sk-xxxxx-commercial"
    assert_nothing_private(commercial.last)


@pytest.mark.parametrize("where", ["request", "config"])
def test_the_sdks_placeholder_credential_is_not_forwarded(gw, private, where):
    """Without Authorization=, portkey-ai's inner OpenAI client sends 'Bearer OPENAI_API_KEY': listed in a
    forward list, that placeholder reached the model server (and would win over a target's own api_key)."""
    if where == "request":
        client = Portkey(base_url=gw.v1, provider="openai", custom_host=private.v1, forward_headers=["Authorization"])
    else:
        client = Portkey(base_url=gw.v1, config={"provider": "openai", "custom_host": private.v1,
                                                  "api_key": "sk-target-own", "forward_headers": ["Authorization"]})
    client.chat.completions.create(**CHAT)
    expected = None if where == "request" else "Bearer sk-target-own"
    assert lowered(private.last).get("authorization") == expected


def test_node_sdk_wire_form_camel_case_list(gw, private):
    """What the Node SDK sends for the seed's NodeJS tab: its camelCase list and the raw kebab headers."""
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": private.v1,
        "authorization": PRIVATE["authorization"], "x-api-key": PRIVATE["x-api-key"],
        "x-org-id": PRIVATE["x-org-id"], "x-portkey-forward-headers": "Authorization,xApiKey,xOrgId"})
    assert response.status_code == 200, response.text
    sent = lowered(private.last)
    assert (sent.get("authorization"), sent.get("x-api-key"), sent.get("x-org-id")) == (
        PRIVATE["authorization"], PRIVATE["x-api-key"], PRIVATE["x-org-id"])


@pytest.mark.parametrize("listed", ["x-org-id", "X-Org-Id", "x_org_id", "xOrgId", "XOrgId", "X_ORG_ID"])
def test_every_spelling_of_a_name_matches(gw, private, listed):
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": private.v1,
        "x-org-id": PRIVATE["x-org-id"], "x-portkey-forward-headers": listed})
    assert response.status_code == 200, response.text
    assert lowered(private.last).get("x-org-id") == PRIVATE["x-org-id"]


@pytest.mark.parametrize("form", ["raw", "sdk-prefixed"])
def test_private_values_never_reach_the_log(gw, private, commercial, form):
    """x-org-id is no credential by its name: it is secret because a config target forwards it."""
    config = seed_config(private.v1)["targets"][0]  # the private target alone: its answer is the response
    config["forward_headers"].append("x-org-id")
    org = PRIVATE["x-org-id"]
    private.push(Reply(status=401, json={"error": {"message": f"bad org {org} key {PRIVATE['x-api-key']}"}}))
    trace = f"forward-headers-log-check-{form}"
    name = "x-org-id" if form == "raw" else "x-portkey-x-org-id"
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30, headers={
        "x-portkey-config": json.dumps(config), "x-portkey-trace-id": trace, name: org,
        "x-portkey-x-api-key": PRIVATE["x-api-key"]})
    assert lowered(private.last)["x-org-id"] == org
    assert org in response.text  # the client sees its own upstream's answer; the log must not
    records = LogApi(gw.url).wait(1, trace_id=trace)
    detail = LogApi(gw.url).get(f"/logs/{records[0]['id']}")
    text = json.dumps(records) + detail.text
    assert "bad org" in text  # the body is logged ...
    assert [value for value in PRIVATE.values() if value.split()[-1] in text] == []  # ... scrubbed
