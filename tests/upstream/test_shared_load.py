"""In-flight counts shared through Redis: two processes' boards (two SharedInFlight on one Redis, under a
unique key prefix) see each other's requests; a process that stops refreshing stops counting."""

from __future__ import annotations

import uuid

import pytest

from sluicegate.routing.load import LoadBoard
from sluicegate.upstream.shared_load import SharedInFlight, parse_fields
from tests.inprocess import Clock

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix():
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        pytest.skip("no Redis on 127.0.0.1:6379")
    chosen = f"sgtest:{uuid.uuid4().hex[:12]}:inflight:"
    yield chosen
    async for key in client.scan_iter(match=chosen + "*", count=500):
        await client.delete(key)
    await client.aclose()


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_each_process_sees_the_others_in_flight_and_a_silent_one_fades(prefix):
    wall = Wall()
    one, two = LoadBoard(Clock()), LoadBoard(Clock())
    a, b = SharedInFlight(one, REDIS_URL, prefix=prefix, wall_clock=wall), \
        SharedInFlight(two, REDIS_URL, prefix=prefix, wall_clock=wall)
    try:
        for _ in range(3):
            one.started("target", "http://127.0.0.1:5/v1")
        two.started("target", "http://127.0.0.1:5/v1")
        await a.sync_once()
        await b.sync_once()
        await a.sync_once()
        assert one.load("target").in_flight == 3 + 1
        assert two.load("target").in_flight == 1 + 3
        assert next(one.views()).in_flight == 3  # /metrics shows this process's own count
        one.finished("target", ok=True, ttft_ms=1, latency_ms=1)
        await a.sync_once()
        await b.sync_once()
        assert two.load("target").in_flight == 1 + 2
        wall.now += a.stale_s + 0.5  # process one stops refreshing (it died)
        await b.sync_once()
        assert two.load("target").in_flight == 1
    finally:
        await a.stop()
        await b.stop()


async def test_redis_holds_no_host_and_no_credential_digest(prefix):
    from redis.asyncio import Redis

    board = LoadBoard(Clock())
    board.started("openai|http://10.1.2.3:8000/v1|m|abcdef0123456789", "http://10.1.2.3:8000/v1")
    shared = SharedInFlight(board, REDIS_URL, prefix=prefix)
    try:
        await shared.sync_once()
    finally:
        await shared.stop()
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    assert len(keys) == 1 and b"10.1.2.3" not in keys[0] and b"abcdef" not in keys[0]
    assert await client.ttl(keys[0]) > 0  # expires by itself
    await client.aclose()


async def test_with_nothing_to_share_redis_is_not_said_reachable(caplog):
    """With no least-busy target used yet, no round asks Redis: "Redis reachable" was logged for a Redis that
    was down."""
    import asyncio
    import logging

    shared = SharedInFlight(LoadBoard(Clock()), "redis://127.0.0.1:9/0", interval_s=0.01)  # nothing listens
    with caplog.at_level(logging.INFO, logger="sluicegate"):
        assert await shared.sync_once() is False
        shared.start()
        await asyncio.sleep(0.05)
        await shared.stop()
    assert "Redis reachable" not in caplog.text and shared.up is False


@pytest.mark.parametrize(("fields", "expected"), [
    ({b"me": b"5:100.0", b"other": b"2:99.5"}, (2, [])),
    ({"x": "3:100", "y": "4:99"}, (7, [])),
    ({b"old": b"9:80.0"}, (0, [])),  # stale: no longer counted, not yet deleted
    ({b"dead": b"9:10.0"}, (0, ["dead"])),  # long dead: deleted
    ({b"junk": b"nonsense"}, (0, ["junk"])),
    ({b"neg": b"-4:100.0"}, (0, [])),
    ({}, (0, [])),
])
def test_parse_fields(fields, expected):
    assert parse_fields(fields, "me", now=100.0, stale_s=2.0) == expected
