"""The shared circuit breaker (cluster/breaker.py): in-process against a real Redis, then three real
replicas, where a circuit opened by one replica is skipped by the others, only one trial crosses the
cluster after the cooldown, a failed trial reopens it everywhere and a good one closes it everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluicegate.cluster.breaker import RedisBreakerPeer
from sluicegate.config.model import BreakerPolicy
from sluicegate.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.fakes.upstream import FakeUpstream, Reply
from tests.replicas import Replicas

POLICY = BreakerPolicy(failure_threshold=2, cooldown_ms=1000)
KEY = "openai|http://127.0.0.1:9/v1||"


async def _members(url: str, prefix: str, count: int) -> list[tuple[CircuitBreaker, RedisBreakerPeer]]:
    members = []
    for _ in range(count):
        peer = RedisBreakerPeer(url, prefix=prefix, channel=prefix + "channel")
        breaker = CircuitBreaker(time.monotonic, peer=peer)
        peer.bind(breaker)
        peer.start()
        await asyncio.wait_for(peer.subscribed.wait(), 10)
        members.append((breaker, peer))
    return members


async def _until(condition, timeout: float = 3.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the bound"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def test_open_travels_one_trial_is_granted_and_a_late_joiner_reads_the_open_circuit(shared_redis, redis_prefix):
    async def run() -> None:
        members = await _members(shared_redis, redis_prefix, 4)
        (a, _), others = members[0], [b for b, _ in members[1:]]
        try:
            a.record(KEY, POLICY, 500)
            a.record(KEY, POLICY, 500)
            assert a.state(KEY, POLICY) == OPEN
            seen = await _until(lambda: all(b.state(KEY, POLICY) == OPEN for b in others))
            assert seen < 1.0
            (late, late_peer), = await _members(shared_redis, redis_prefix, 1)
            members.append((late, late_peer))
            assert late.state(KEY, POLICY) == OPEN  # read back from Redis on subscribing
            await asyncio.sleep(1.05)
            everyone = [a, *others, late]
            assert all(b.state(KEY, POLICY) == HALF_OPEN for b in everyone)
            for b in everyone:
                assert not b.allow(KEY, POLICY)  # each asks Redis; none may go before an answer
            await asyncio.sleep(0.3)
            granted = [b for b in everyone if b.allow(KEY, POLICY)]
            assert len(granted) == 1  # one trial in the whole cluster
            granted[0].record(KEY, POLICY, 200)
            await _until(lambda: all(b.state(KEY, POLICY) == CLOSED for b in everyone))
        finally:
            for _, peer in members:
                await peer.close()

    asyncio.run(run())


def test_without_redis_the_breaker_works_per_process_and_tries_on_its_own(private_redis):
    async def run() -> None:
        (a, peer), = await _members(private_redis.url, "sg:", 1)
        try:
            private_redis.stop()
            a.record(KEY, POLICY, 500)
            a.record(KEY, POLICY, 500)
            assert a.state(KEY, POLICY) == OPEN and not a.allow(KEY, POLICY)
            await asyncio.sleep(1.05)
            assert not a.allow(KEY, POLICY)  # asks the (dead) Redis
            await _until(lambda: a.admits(KEY, POLICY), timeout=5)  # no answer: granted locally
            assert a.allow(KEY, POLICY)
            a.record(KEY, POLICY, 200)
            assert a.state(KEY, POLICY) == CLOSED
        finally:
            await peer.close()

    asyncio.run(run())


@pytest.fixture
def primary() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_three_replicas_share_one_breaker(tmp_path: Path, pg_url: str, private_redis, primary, upstream) -> None:
    config = json.dumps({"strategy": {"mode": "fallback"},
                         "targets": [{"provider": "openai", "custom_host": primary.v1,
                                      "cb_config": {"failure_threshold": 3, "cooldown_interval": 2000}},
                                     {"provider": "openai", "custom_host": upstream.v1}]})
    group = Replicas(tmp_path, pg_url, private_redis.url).start()
    head = {"x-portkey-config": config}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def send(*replicas: int) -> list[int]:
        async def go() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                answers = await asyncio.gather(*(client.post(group.chat_url(i), headers=head, json=body)
                                                 for i in replicas))
            return [a.status_code for a in answers]

        return asyncio.run(go())

    try:
        primary.push(*[Reply(status=500)] * 3)
        assert send(0) + send(0) + send(0) == [200] * 3  # the fallback answers
        opened = time.monotonic()
        assert len(primary.received) == 3  # replica 0 opened the circuit
        time.sleep(0.3)
        assert send(1, 2, 1, 2, 1, 2) == [200] * 6
        assert len(primary.received) == 3  # the others skip it without trying it themselves

        primary.push(Reply(status=500, delay=1.5))  # the trial: slow, then failing
        time.sleep(max(0.0, opened + 2.1 - time.monotonic()))
        until = time.monotonic() + 1.2
        while time.monotonic() < until:
            assert send(0, 1, 2) == [200] * 3
            time.sleep(0.05)
        assert len(primary.received) == 4  # exactly one trial in the cluster while it ran
        time.sleep(0.6)  # the trial failed: open again everywhere
        reopened = time.monotonic()
        assert send(0, 1, 2, 0, 1, 2) == [200] * 6
        assert len(primary.received) == 4

        time.sleep(max(0.0, reopened + 2.1 - time.monotonic()))
        deadline = time.monotonic() + 5
        turn = 0
        # One request at a time, from each replica in turn: requests sent together could follow a good
        # trial that has already closed the circuit, and then rightly go to the primary as well.
        while len(primary.received) == 4 and time.monotonic() < deadline:
            assert send(turn % 3) == [200]
            turn += 1
            time.sleep(0.05)
        assert len(primary.received) == 5  # a good trial closes the circuit ...
        time.sleep(0.3)
        assert send(0, 1, 2) == [200] * 3
        assert len(primary.received) == 8  # ... on every replica
    finally:
        group.stop()


def test_after_redis_comes_back_the_replicas_resubscribe_and_share_again(private_redis, monkeypatch):
    from sluicegate.cluster import breaker as shared

    monkeypatch.setattr(shared, "RETRY_S", 0.2)

    async def run() -> None:
        members = await _members(private_redis.url, "sg:", 2)
        (a, peer_a), (b, peer_b) = members
        try:
            await asyncio.to_thread(private_redis.stop)
            await _until(lambda: not peer_a.subscribed.is_set() and not peer_b.subscribed.is_set(), timeout=15)
            await asyncio.to_thread(private_redis.start)
            await asyncio.wait_for(asyncio.gather(peer_a.subscribed.wait(), peer_b.subscribed.wait()), 15)
            a.record(KEY, POLICY, 500)
            a.record(KEY, POLICY, 500)
            await _until(lambda: b.state(KEY, POLICY) == OPEN)
        finally:
            for _, peer in members:
                await peer.close()

    asyncio.run(run())
