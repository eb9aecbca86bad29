"""The dispatcher in-process: strategies, retries, breaker and attempt records against a fake transport,
with the clock, sleep and rng it is given (no network, no real waiting)."""

from __future__ import annotations

import pytest

from sluicegate.config.model import RetryPolicy, Target
from tests.fakes.transport import FakeTransport, chat_completion, json_response, refused
from tests.inprocess import DIRECT, HOST, Clock, call, config, dispatcher

OPENAI = {"x-portkey-provider": "openai", "x-portkey-custom-host": HOST, "authorization": "Bearer sk-test-1234"}


async def test_direct_request_goes_to_the_custom_host_with_the_credential_and_the_bytes_sent():
    transport = FakeTransport(script=[json_response(chat_completion("hello"))])
    request = call(OPENAI)
    outcome, attempts = await dispatcher(transport).run(request, DIRECT)
    assert outcome.status == 200 and outcome.target_path == "config" and outcome.provider == "openai"
    [sent] = transport.sent
    assert (sent.method, sent.url) == ("POST", HOST + "/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test-1234"
    assert sent.body == request.body  # untouched bytes: no re-serialisation
    assert [(a.target_path, a.status, a.retry) for a in attempts] == [("config", 200, 0)]


async def test_fallback_moves_on_after_a_failure_and_records_every_attempt():
    transport = FakeTransport(script=[json_response({"error": {"message": "busy"}}, 503),
                                      json_response(chat_completion())])
    root = config({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai", "api_key": "sk-a", "custom_host": HOST},
        {"provider": "openai", "api_key": "sk-b", "custom_host": "http://127.0.0.1:10/v1"}]})
    outcome, attempts = await dispatcher(transport).run(call(), root)
    assert outcome.ok and outcome.target_path == "config.targets[1]"
    assert [a.status for a in attempts] == [503, 200]
    assert [s.headers["authorization"] for s in transport.sent] == ["Bearer sk-a", "Bearer sk-b"]
    assert attempts[0].error is not None and '"message":"openai error: busy"' in attempts[0].error


async def test_retries_sleep_through_the_injected_sleep_and_latency_uses_the_injected_clock():
    clock = Clock()
    transport = FakeTransport(script=[json_response({}, 429), json_response({}, 429),
                                      json_response(chat_completion())])
    target = Target(json_path="config", provider="openai", api_key="sk", custom_host=HOST,
                    retry=RetryPolicy(attempts=3))
    outcome, attempts = await dispatcher(transport, clock=clock).run(call(), target)
    assert outcome.ok and outcome.retries == 2
    assert clock.slept == [1.0, 2.0]  # the exponential backoff, never really waited
    assert [(a.retry, a.latency_ms) for a in attempts] == [(0, 0.0), (1, 0.0), (2, 0.0)]


async def test_spent_retries_report_minus_one():
    transport = FakeTransport(handler=lambda sent: json_response({}, 503))
    target = Target(json_path="config", provider="openai", api_key="sk", custom_host=HOST,
                    retry=RetryPolicy(attempts=2))
    outcome, attempts = await dispatcher(transport).run(call(), target)
    assert outcome.status == 503 and outcome.retries == -1 and len(attempts) == 3


@pytest.mark.parametrize(("rng", "expected"), [(0.1, "config.targets[0]"), (0.9, "config.targets[1]")])
async def test_loadbalance_picks_by_the_injected_rng(rng: float, expected: str):
    transport = FakeTransport(handler=lambda sent: json_response(chat_completion()))
    root = config({"strategy": {"mode": "loadbalance"}, "targets": [
        {"provider": "openai", "api_key": "sk", "custom_host": HOST, "weight": 1},
        {"provider": "openai", "api_key": "sk", "custom_host": HOST, "weight": 1}]})
    outcome, _ = await dispatcher(transport, rng=rng).run(call(), root)
    assert outcome.target_path == expected


async def test_an_unreachable_upstream_is_a_502_outcome_not_an_exception():
    transport = FakeTransport(script=[refused()])
    outcome, attempts = await dispatcher(transport).run(call(OPENAI), DIRECT)
    assert outcome.status == 502 and not outcome.responded
    assert outcome.body is not None and b"Could not connect to http://127.0.0.1:9/v1: Connection refused" in outcome.body
    assert attempts[0].error is not None and "Connection refused" in attempts[0].error


async def test_the_breaker_opens_on_the_injected_clock_and_closes_after_its_cooldown():
    clock = Clock()
    answers = iter([503, 503, 200])
    transport = FakeTransport(handler=lambda sent: json_response({}, next(answers)))
    root = config({"strategy": {"mode": "fallback"}, "cb_config": {"failure_threshold": 1, "cooldown_interval": 1000},
                   "targets": [{"provider": "openai", "api_key": "sk", "custom_host": HOST},
                               {"provider": "openai", "api_key": "sk", "custom_host": "http://127.0.0.1:10/v1"}]})
    run = dispatcher(transport, clock=clock)
    first, _ = await run.run(call(), root)  # both fail: both circuits open
    assert first.status == 503 and len(transport.sent) == 2
    clock.now += 2.0  # past the cooldown: half-open, a trial goes through
    second, _ = await run.run(call(), root)
    assert second.ok and len(transport.sent) == 3
