"""Least-busy through the dispatcher, in-process: in-flight counts (streams until they end), failures that
must not look idle, health, and the note the request log gets."""

from __future__ import annotations

import asyncio
import random

from sluicegate.routing.load import BoardPolicy, LoadBoard
from tests.fakes.transport import FakeTransport, chat_completion, content_chunk, json_response, sse_response
from tests.inprocess import Clock, call, config, dispatcher

A = "http://127.0.0.1:11/v1"
B = "http://127.0.0.1:12/v1"


def least_busy(*hosts: str, **extra) -> dict:
    return {"strategy": {"mode": "loadbalance", "policy": "least-busy"},
            "targets": [{"provider": "openai", "api_key": "sk", "custom_host": h, **extra} for h in hosts]}


def host_of(sent) -> str:
    return sent.url.rsplit("/chat/completions", 1)[0]


async def test_an_open_stream_counts_as_in_flight_until_it_ends():
    clock = Clock()
    def answer(sent):
        if b'"stream":true' in sent.body:
            return sse_response(content_chunk("a"), content_chunk("b"), "[DONE]")
        return json_response(chat_completion())

    transport = FakeTransport(handler=answer)
    board = LoadBoard(clock)
    run = dispatcher(transport, clock=clock, board=board, rng=random.Random(1).random)
    root = config(least_busy(A, B))
    streaming = call(body={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    first, _ = await run.run(streaming, root)
    assert first.stream is not None
    busy = host_of(transport.sent[0])
    assert sum(v.in_flight for v in board.views()) == 1
    for _ in range(5):  # while the stream is open, every new request goes to the other target
        outcome, _ = await run.run(call(), root)
        assert host_of(transport.sent[-1]) != busy
    while await first.stream.body.read_chunk():
        pass
    assert sum(v.in_flight for v in board.views()) == 0
    first.stream.close()  # closing after the end counts nothing twice
    assert sum(v.in_flight for v in board.views()) == 0


async def test_concurrent_requests_spread_by_in_flight():
    gate = asyncio.Event()

    async def slow(sent):
        await gate.wait()
        return json_response(chat_completion())

    transport = FakeTransport(handler=slow)
    board = LoadBoard(Clock())
    run = dispatcher(transport, board=board, rng=random.Random(2).random)
    root = config(least_busy(A, B))
    tasks = [asyncio.create_task(run.run(call(), root)) for _ in range(10)]
    await asyncio.sleep(0)
    while len(transport.sent) < 10:
        await asyncio.sleep(0)
    hits = [host_of(s) for s in transport.sent]
    assert abs(hits.count(A) - hits.count(B)) <= 1  # P2C over two targets: always the emptier one
    gate.set()
    await asyncio.gather(*tasks)
    assert sum(v.in_flight for v in board.views()) == 0


async def test_a_fast_failing_target_gets_at_most_a_handful_of_requests():
    clock = Clock()

    def answer(sent):
        if host_of(sent) == A:
            return json_response({"error": {"message": "boom"}}, 500)  # fails at once: looks "idle"
        clock.now += 0.2  # the healthy one takes its time
        return json_response(chat_completion())

    transport = FakeTransport(handler=answer)
    run = dispatcher(transport, clock=clock, board=LoadBoard(clock), rng=random.Random(3).random)
    root = config(least_busy(A, B))
    statuses = [(await run.run(call(), root))[0].status for _ in range(60)]
    failed = sum(host_of(s) == A for s in transport.sent)
    assert 1 <= failed <= 3, failed
    assert statuses.count(200) == 60 - failed


async def test_an_unhealthy_target_leaves_rotation_and_returns():
    clock = Clock()
    transport = FakeTransport(handler=lambda sent: json_response(chat_completion()))
    board = LoadBoard(clock, BoardPolicy(unhealthy_after=1, healthy_after=1))
    run = dispatcher(transport, clock=clock, board=board, rng=random.Random(4).random)
    root = config(least_busy(A, B))
    for _ in range(20):
        await run.run(call(), root)
    assert {host_of(s) for s in transport.sent} == {A, B}  # equal scores: ties spread them
    [key_a] = [v.key for v in board.views() if v.base_url == A]
    board.probed(key_a, False, "connection refused")
    transport.sent.clear()
    for _ in range(20):
        await run.run(call(), root)
    assert {host_of(s) for s in transport.sent} == {B}
    board.probed(key_a, True)
    transport.sent.clear()
    for _ in range(20):
        await run.run(call(), root)
    assert A in {host_of(s) for s in transport.sent}


async def test_when_every_target_is_unhealthy_they_are_all_tried_rather_than_none():
    board = LoadBoard(Clock())
    transport = FakeTransport(handler=lambda sent: json_response(chat_completion()))
    run = dispatcher(transport, board=board, rng=random.Random(5).random)
    root = config(least_busy(A, B))
    await run.run(call(), root)
    await run.run(call(), root)
    for view in list(board.views()):
        board.probed(view.key, False, "down")
    outcome, _ = await run.run(call(), root)
    assert outcome.ok


async def test_the_attempt_carries_why_it_was_chosen():
    transport = FakeTransport(handler=lambda sent: json_response(chat_completion()))
    run = dispatcher(transport, rng=random.Random(6).random)
    outcome, attempts = await run.run(call(), config(least_busy(A, B)))
    [attempt] = attempts
    note = attempt.routing
    assert note["policy"] == "least-busy" and note["chosen"] == attempt.target_path
    assert note["reason"] in ("tie", "lower score")
    assert sorted(c["target"] for c in note["compared"]) == ["config.targets[0]", "config.targets[1]"]
    assert all(isinstance(c["score"], float) and c["in_flight"] == 0 for c in note["compared"])


async def test_weighted_stays_the_default_and_tracks_nothing():
    board = LoadBoard(Clock())
    transport = FakeTransport(handler=lambda sent: json_response(chat_completion()))
    run = dispatcher(transport, board=board)
    root = config({"strategy": {"mode": "loadbalance"},
                   "targets": [{"provider": "openai", "api_key": "sk", "custom_host": h} for h in (A, B)]})
    _, attempts = await run.run(call(), root)
    assert attempts[0].routing is None and len(board) == 0
