"""First-run friction, through a real gateway process: every refusal says how to get it right.

A provider name that is a model server gets a hint to use its API spec plus a custom host; a wrong admin
token gets a hint where the token is and how to reset it; the admin API refuses a private custom host with
the same rule and message as the CLI; metadata values that are not strings behave as in Portkey.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("first-run"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


@pytest.mark.parametrize("name", ["vllm", "ollama-not", "llama.cpp", "tgi", "VLLM"])
def test_model_server_as_provider_gets_a_hint(gw, upstream, name):
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30,
                          headers={"x-portkey-provider": name, "x-portkey-custom-host": upstream.v1})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("Invalid provider passed")
    if name == "ollama-not":
        assert message == "Invalid provider passed"
    else:
        assert "x-portkey-provider: openai" in message and "x-portkey-custom-host" in message
    assert upstream.received == []


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789"])
def test_admin_401_says_where_the_token_is(gw, authorization):
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.get(f"{gw.url}/admin/api/providers", headers=headers, timeout=30)
    assert response.status_code == 401
    message = response.json()["message"]
    assert "SLUICEGATE_ADMIN_TOKEN" in message and "sluicegate admin-token reset" in message
    assert ADMIN_TOKEN not in message


def test_admin_api_private_host_names_the_fix(gw):
    provider = {"slug": "gpu", "spec": "openai", "custom_host": "http://10.0.0.5:8000/v1"}
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    refused = httpx.post(f"{gw.url}/admin/api/providers", json=provider, headers=auth, timeout=30)
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert "10.0.0.5 is a private address" in message
    assert "TRUSTED_CUSTOM_HOSTS" in message and '"allow_entry": "10.0.0.5"' in message
    assert "for every request" in message  # the entry joins the one allow-list: not this provider's alone
    allowed = httpx.post(f"{gw.url}/admin/api/providers", json={**provider, "allow_entry": "10.0.0.5"},
                         headers=auth, timeout=30)
    assert allowed.status_code in (200, 201), allowed.text


def test_metadata_numbers_route_as_numbers_and_log_as_text(gw, upstream):
    """Portkey keeps {"n": 5, "vip": true} as sent: a condition on the number 5 or on true matches."""
    config = {"strategy": {"mode": "conditional", "conditions": [
                  {"query": {"$and": [{"metadata.n": {"$eq": 5}}, {"metadata.vip": {"$eq": True}}]},
                   "then": "private"}],
              "default": "nowhere"},
              "targets": [{"name": "private", "provider": "openai", "custom_host": upstream.v1},
                          {"name": "nowhere", "provider": "openai", "custom_host": "http://127.0.0.1:9/v1"}]}
    trace = "metadata-number-check"
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30, headers={
        "x-portkey-config": json.dumps(config), "x-portkey-trace-id": trace,
        "x-portkey-metadata": json.dumps({"n": 5, "vip": True, "team": "search"})})
    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    [record] = LogApi(gw.url).wait(1, trace_id=trace)
    assert record["metadata"] == {"n": "5", "vip": "true", "team": "search"}


def test_metadata_objects_are_refused(gw, upstream):
    response = httpx.post(f"{gw.v1}/chat/completions", json=CHAT, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
        "x-portkey-metadata": json.dumps({"tags": ["a", "b"]})})
    assert response.status_code == 400
    assert "value of 'tags' must be a string, number, boolean or null" in response.json()["message"]
