"""The limiter's own Redis connection (limits/redis_channel.py) against real redis-servers on loopback:
replies matched to their callers under concurrency, a password and a database from the URL (never echoed),
a Redis that stops answering or restarts."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import hiredis
import pytest

from sluicegate.limits.redis_channel import ChannelBroken, ChannelTimeout, RedisChannel
from tests.limits.conftest import PrivateRedis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
PASSWORD = "chan-pw-5b1e-never-echoed"


def channel(url: str, timeout_s: float = 2.0) -> RedisChannel:
    return RedisChannel(url, timeout_s=timeout_s, connect_timeout_s=1.0)


async def test_concurrent_callers_each_get_their_own_reply(private_redis) -> None:
    chan = channel(private_redis.url)
    replies = await asyncio.gather(*(chan.call("ECHO", f"caller-{i}") for i in range(300)))
    assert replies == [f"caller-{i}".encode() for i in range(300)]
    batch = await chan.call_many([("SET", "k", "v"), ("GET", "k"), ("ECHO", "last")])
    assert batch == [b"OK", b"v", b"last"]
    error = await chan.call("EVALSHA", "0" * 40, 0)
    assert isinstance(error, hiredis.ReplyError) and str(error).startswith("NOSCRIPT")  # returned, not raised
    await chan.close()


async def test_a_password_and_a_database_from_the_url(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path, "--requirepass", PASSWORD)
    server.start()
    try:
        chan = channel(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/3")
        assert await chan.call("SET", "where", "db3") == b"OK"
        other = channel(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
        assert await other.call("GET", "where") is None  # the SET went to database 3
        wrong = channel(f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0")
        with pytest.raises(ChannelBroken) as refused:
            await wrong.call("PING")
        assert "refused the connection" in str(refused.value) and PASSWORD not in str(refused.value)
        for chan_ in (chan, other, wrong):
            await chan_.close()
    finally:
        server.stop()


async def test_a_redis_that_stops_answering_fails_its_calls_within_the_timeout(private_redis) -> None:
    chan = channel(private_redis.url, timeout_s=0.5)
    assert await chan.call("PING") == b"PONG"
    private_redis.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(chan.call("PING") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, ChannelTimeout) for r in results), results
        assert time.monotonic() - started < 1.5
    finally:
        private_redis.proc.send_signal(signal.SIGCONT)
    assert await chan.call("PING") == b"PONG"  # a new connection once it answers again
    await chan.close()


async def test_after_a_restart_a_call_fails_at_most_once_then_reconnects(private_redis) -> None:
    chan = channel(private_redis.url)
    assert await chan.call("PING") == b"PONG"
    private_redis.stop()
    with pytest.raises(ChannelBroken):
        await chan.call("PING")  # nothing listens: refused at once
    private_redis.start()
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(await chan.call("PING"))
        except ChannelBroken:
            outcomes.append("broken")
    assert outcomes[-1] == b"PONG"
    await chan.close()
