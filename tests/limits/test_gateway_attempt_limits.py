"""A catalog provider's limits per attempt, through a real gateway process: a fallback or loadbalance
target's provider is held to its own rate limit and budget (docs/limits.md), on memory and Redis counters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess
from tests.limits.conftest import free_port
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT = {"model": "m1", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(params=["memory", "redis"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    if request.param == "redis":
        env["SLUICEGATE_REDIS_URL"] = request.getfixturevalue("private_redis").url
    process = GatewayProcess(tmp_path, env=env).start()
    yield process
    process.stop()


@pytest.fixture
def second_upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


def provider(gateway: GatewayProcess, slug: str, host: str, **limits: object) -> None:
    made = httpx.post(f"{gateway.url}/admin/api/providers", headers=ADMIN, timeout=30,
                      json={"slug": slug, "spec": "openai", "custom_host": host})
    assert made.status_code in (200, 201), made.text
    if limits:
        put = httpx.put(f"{gateway.url}/admin/api/limits/provider/{slug}", headers=ADMIN, timeout=30, json=limits)
        assert put.status_code == 200, put.text


def key(gateway: GatewayProcess) -> str:
    answer = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                        json={"name": "client", "scopes": ["completions.write"]})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


def send(gateway: GatewayProcess, secret: str, config: dict[str, object], trace: str | None = None, *,
         stream: bool = False) -> httpx.Response:
    head = {"x-portkey-api-key": secret, "x-portkey-config": json.dumps(config)}
    if trace:
        head["x-portkey-trace-id"] = trace
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}} if stream else CHAT
    return httpx.post(f"{gateway.v1}/chat/completions", headers=head, json=body, timeout=30)


def fallback(first: str, second: str) -> dict[str, object]:
    return {"strategy": {"mode": "fallback"}, "targets": [{"provider": first}, {"provider": second}]}


def test_a_fallback_targets_rate_limit_holds_and_its_refusal_is_logged(gateway: GatewayProcess, upstream) -> None:
    provider(gateway, "down", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens: refused every time
    provider(gateway, "spare", upstream.v1, rate_limits=[{"type": "requests", "unit": "rpm", "value": 2}])
    secret = key(gateway)
    traces = [new_trace() for _ in range(3)]
    answers = [send(gateway, secret, fallback("@down", "@spare"), trace) for trace in traces]
    assert [a.status_code for a in answers] == [200, 200, 429], answers[-1].text
    refused = answers[-1]
    assert "Rate limit exceeded for provider 'spare'" in refused.json()["message"]
    assert refused.json()["status"] == "failure"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["x-ratelimit-limit"] == "2"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert len(upstream.received) == 2  # the third never reached @spare
    record = LogApi(gateway.url).one(traces[-1])
    assert record["status"] == 429
    attempts = [(a["provider"], a["status"]) for a in record["attempts"]]
    assert attempts[0][0] == "@down" and attempts[0][1] != 200 and attempts[1] == ("@spare", 429)
    assert record["attempts"][1]["error"].startswith("not sent: Rate limit exceeded for provider 'spare'")
    served = LogApi(gateway.url).one(traces[0])
    assert [a["provider"] for a in served["attempts"]] == ["@down", "@spare"] and served["status"] == 200


def test_a_loadbalance_sends_everything_to_the_target_still_within_its_limits(
        gateway: GatewayProcess, upstream, second_upstream: FakeUpstream) -> None:
    provider(gateway, "small", upstream.v1, rate_limits=[{"type": "requests", "unit": "rpm", "value": 1}])
    provider(gateway, "large", second_upstream.v1, rate_limits=[{"type": "requests", "unit": "rpm", "value": 3}])
    secret = key(gateway)
    config = {"strategy": {"mode": "loadbalance"},
              "targets": [{"provider": "@small", "weight": 0.5}, {"provider": "@large", "weight": 0.5}]}
    statuses = [send(gateway, secret, config).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # 1 on @small and 3 on @large, whichever was drawn first
    assert (len(upstream.received), len(second_upstream.received)) == (1, 3)


def test_a_fallback_targets_token_budget_is_settled_with_the_actual_usage(gateway: GatewayProcess, upstream) -> None:
    """Each request reserves 1 ("hi") + 10 (max_tokens) tokens on @spare and settles at 8, the answer's (or
    the stream's) usage: 8 + 11 fits in 20, 16 + 11 does not."""
    provider(gateway, "down", f"http://127.0.0.1:{free_port()}/v1")
    provider(gateway, "spare", upstream.v1, usage_limits={"type": "tokens", "credit_limit": 20})
    secret = key(gateway)
    streamed = send(gateway, secret, fallback("@down", "@spare"), stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    wait_used(gateway, "spare", 8)
    assert send(gateway, secret, fallback("@down", "@spare")).status_code == 200
    wait_used(gateway, "spare", 16)
    over = send(gateway, secret, fallback("@down", "@spare"))
    assert over.status_code == 412 and "Usage limit exhausted for provider 'spare'" in over.json()["message"]
    assert len(upstream.received) == 2


def wait_used(gateway: GatewayProcess, slug: str, used: float) -> None:
    """Settlement runs in the request log's task, just after the answer: wait for it (bounded)."""
    deadline = time.monotonic() + 15
    now = None
    while time.monotonic() < deadline:
        now = httpx.get(f"{gateway.url}/admin/api/limits/provider/{slug}", headers=ADMIN, timeout=30).json()["used"]
        if now == used:
            return
        time.sleep(0.05)
    raise AssertionError(f"usage of provider {slug} never reached {used} (now {now})")
