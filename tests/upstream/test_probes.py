"""The probe task in-process: what passes, what fails, what it scrapes, and where it never goes."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.routing.load import BoardPolicy, LoadBoard
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.probes import Prober
from tests.fakes.transport import FakeResponse, FakeTransport, json_response, refused
from tests.inprocess import Clock

BASE = "http://127.0.0.1:7/v1"


def text_response(text: str, status: int = 200) -> FakeResponse:
    return FakeResponse(status, [("content-type", "text/plain")], [text.encode()])


def board_with(base: str = BASE) -> tuple[LoadBoard, str]:
    board = LoadBoard(Clock(), BoardPolicy(unhealthy_after=1, healthy_after=1))
    board.started("k", base)
    board.finished("k", ok=True, ttft_ms=1, latency_ms=1)
    return board, "k"


def no_check(url: str) -> None:
    return None


@pytest.mark.parametrize(("health", "passes"), [
    (json_response({"data": []}), True),
    (json_response({"error": "no key"}, 401), True),  # the server is up; it wants a credential
    (json_response({}, 404), True),
    (json_response({}, 500), False),
    (json_response({}, 503), False),
    (refused(), False),
    (TimeoutError(), False),
])
async def test_health_verdicts(health, passes):
    board, key = board_with()
    transport = FakeTransport(handler=lambda sent: health if sent.url.endswith("/models") else text_response("", 404))
    await Prober(board, transport, no_check, interval_s=1, timeout_s=1).probe_all()
    assert board.healthy(key) is passes
    assert transport.sent[0].url == BASE + "/models" and transport.sent[0].method == "GET"
    assert "authorization" not in transport.sent[0].headers  # no credential ever goes with a probe


async def test_a_probe_that_hangs_is_cut_at_the_timeout():
    board, key = board_with()

    async def hang(sent):
        await asyncio.sleep(10)

    await asyncio.wait_for(Prober(board, FakeTransport(handler=hang), no_check, interval_s=1,
                                  timeout_s=0.05).probe_all(), 2)
    assert not board.healthy(key)


async def test_metrics_are_scraped_at_the_origin_and_become_the_server_report():
    board, key = board_with()
    transport = FakeTransport(handler=lambda sent: text_response(
        "vllm:num_requests_running 2\nvllm:num_requests_waiting 3\n") if sent.url.endswith("/metrics")
        else json_response({"data": []}))
    await Prober(board, transport, no_check, interval_s=1, timeout_s=1).probe_all()
    assert [s.url for s in transport.sent] == [BASE + "/models", "http://127.0.0.1:7/metrics"]
    assert board.load(key).server_queue == 5


@pytest.mark.parametrize("metrics", [text_response("nope", 404), text_response("<html>", 200), refused()])
async def test_no_usable_metrics_leave_no_report(metrics):
    board, key = board_with()
    transport = FakeTransport(handler=lambda sent: metrics if sent.url.endswith("/metrics")
                              else json_response({"data": []}))
    await Prober(board, transport, no_check, interval_s=1, timeout_s=1).probe_all()
    assert board.healthy(key) and board.load(key).server_queue is None


async def test_the_ssrf_guard_refusal_fails_the_probe_and_nothing_is_sent():
    board, key = board_with("http://169.254.169.254/v1")  # the cloud metadata address
    guard = Guard(GuardPolicy.from_settings(Settings()))  # the app's real guard, default policy
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://169.254.169.254/v1/models")
    transport = FakeTransport(handler=lambda sent: json_response({}))
    await Prober(board, transport, guard.check_url, interval_s=1, timeout_s=1).probe_all()
    assert not board.healthy(key) and transport.sent == []
    assert next(board.views()).healthy is False


async def test_the_loop_runs_every_interval_and_stops():
    board, key = board_with()
    transport = FakeTransport(handler=lambda sent: json_response({"data": []}))
    prober = Prober(board, transport, no_check, interval_s=0.01, timeout_s=1)
    prober.start()
    for _ in range(200):
        if prober.rounds >= 3:
            break
        await asyncio.sleep(0.01)
    await prober.stop()
    assert prober.rounds >= 3
    rounds = prober.rounds
    await asyncio.sleep(0.05)
    assert prober.rounds == rounds


async def test_an_interval_of_zero_starts_nothing():
    prober = Prober(LoadBoard(Clock()), FakeTransport(), no_check, interval_s=0, timeout_s=1)
    prober.start()
    await asyncio.sleep(0.02)
    assert prober.rounds == 0
    await prober.stop()
