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

from sluicegate.limits.redis_channel import ChannelBroken, ChannelTimeout, RedisChannel, _Connection
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


class RecordingTransport:
    """Stands in for the socket: what was written, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


def _connection() -> tuple[_Connection, RecordingTransport]:
    connection, transport = _Connection(on_lost=lambda _: None), RecordingTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


async def test_commands_of_one_loop_turn_after_the_first_go_in_one_write() -> None:
    connection, transport = _connection()
    waiters = [connection.send(f"cmd-{i};".encode(), 1)[0] for i in range(5)]
    assert transport.writes == [b"cmd-0;"]  # the first at once: a lone request waits for nothing
    await asyncio.sleep(0)
    assert transport.writes == [b"cmd-0;", b"cmd-1;cmd-2;cmd-3;cmd-4;"]
    connection.data_received(b"".join(b"$%d\r\nreply-%d\r\n" % (len(b"reply-%d" % i), i) for i in range(5)))
    assert [w.result() for w in waiters] == [b"reply-%d" % i for i in range(5)]  # in the order sent
    connection.send(b"later;", 1)  # a new turn: at once again
    assert transport.writes[-1] == b"later;"


async def test_commands_gathered_on_a_connection_that_ends_fail_with_it_and_are_never_written() -> None:
    connection, transport = _connection()
    first, second, third = (connection.send(b"cmd;", 1)[0] for _ in range(3))
    connection.abort(ChannelTimeout("no answer"))
    connection.connection_lost(None)
    await asyncio.sleep(0)  # the flush runs, finds the connection closing
    assert transport.writes == [b"cmd;"]
    for waiter in (first, second, third):
        with pytest.raises(ChannelTimeout):
            waiter.result()
