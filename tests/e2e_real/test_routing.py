"""Gateway Configs over real model servers: fall back from a dead private LLM to a live one, and spread
load across two live instances. Skipped until Gateway Configs are merged (config branch)."""

from __future__ import annotations

import collections
import json

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.e2e_real.capabilities import require_configs
from tests.e2e_real.clients import MODEL, SHORT, user

LOAD_BALANCED_CALLS = 20  # both halves chosen with probability 1 - 2**-19 at equal weights


def target(v1: str, **extra) -> dict:
    return {"provider": "openai", "custom_host": v1, **extra}


def fallback_config(*hosts: str) -> dict:
    return {"strategy": {"mode": "fallback"}, "targets": [target(h) for h in hosts]}


def loadbalance_config(*hosts: str) -> dict:
    return {"strategy": {"mode": "loadbalance"}, "targets": [target(h, weight=1) for h in hosts]}


def config_client(gateway, config: dict) -> openai.OpenAI:
    return openai.OpenAI(api_key="no-key-needed", base_url=gateway.v1, max_retries=0,
                         default_headers={"x-portkey-config": json.dumps(config)})


@pytest.fixture(scope="session")  # session: asked before the model servers start, skips cheaply
def configs(gateway):
    require_configs(gateway)


def test_fallback_from_a_dead_private_llm_to_a_live_one(gateway, configs, smol, dead_v1):
    raw = config_client(gateway, fallback_config(dead_v1, smol.v1)).chat.completions.with_raw_response.create(
        model=MODEL, messages=user("Say hi."), max_tokens=SHORT)
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert raw.parse().choices[0].message.content.strip()


def test_fallback_through_the_portkey_sdk_config_parameter(gateway, configs, smol, dead_v1):
    client = Portkey(base_url=gateway.v1, config=fallback_config(dead_v1, smol.v1))
    response = client.chat.completions.create(model=MODEL, messages=user("Say hi."), max_tokens=SHORT)
    assert response.choices[0].message.content.strip()


def test_fallback_for_a_stream(gateway, configs, smol, dead_v1):
    """A dead first target fails before any byte is sent to the client, so the stream can still fall
    back; the client sees one whole stream from the live target."""
    stream = config_client(gateway, fallback_config(dead_v1, smol.v1)).chat.completions.create(
        model=MODEL, messages=user("Name a bird."), max_tokens=SHORT, stream=True)
    chunks = [chunk for chunk in stream if chunk.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_all_targets_dead_is_an_upstream_error_not_a_hang(gateway, configs, dead_v1):
    response = httpx.post(f"{gateway.v1}/chat/completions", timeout=30,
                          headers={"x-portkey-config": json.dumps(fallback_config(dead_v1, dead_v1))},
                          json={"model": MODEL, "messages": user("x")})
    assert response.status_code >= 500
    assert "error" in response.json()


def _access_lines(server) -> int:
    return server.log().count("POST /v1/chat/completions")


def test_load_balance_across_two_live_instances(gateway, configs, smol, smol_b):
    client = config_client(gateway, loadbalance_config(smol.v1, smol_b.v1))
    before = (_access_lines(smol), _access_lines(smol_b))
    used = collections.Counter()
    for _ in range(LOAD_BALANCED_CALLS):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user("Hi"), max_tokens=1)
        used[raw.headers["x-portkey-last-used-option-index"]] += 1
    assert set(used) == {"config.targets[0]", "config.targets[1]"}
    # The servers' own access logs agree with the gateway's header: each got what the header says.
    served = (_access_lines(smol) - before[0], _access_lines(smol_b) - before[1])
    assert served == (used["config.targets[0]"], used["config.targets[1]"])
