"""Change notifications in-process: the reload loop's wake (coalescing, one query for every snapshot), and the LISTEN connection on a real
PostgreSQL behind a TCP proxy: a notification wakes its subscriber only, a cut connection is reopened by
itself, and every subscriber is woken once it listens again (what was sent meanwhile is lost)."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from sluicegate.store import notify
from sluicegate.store.notify import ChangeListener
from sluicegate.store.periodic_reads import periodic_reads
from sluicegate.store.polling import Follower, VersionWatch
from sluicegate.store.state import CHANGES_CHANNEL
from tests.tcpproxy import TcpProxy


async def test_a_wake_runs_a_step_at_once_and_a_burst_coalesces(engine) -> None:
    steps: list[float] = []

    async def step(version: int) -> None:
        steps.append(time.monotonic())
        await asyncio.sleep(0.1)  # a reload that takes a while

    poller = VersionWatch(periodic_reads(engine), 60.0)
    poller.add(Follower(1, step, logging.getLogger("t"), failed=str))
    poller.start()
    try:
        started = time.monotonic()
        poller.wake()
        await _until(lambda: steps)
        assert len(steps) == 1 and steps[0] - started < 1.0  # not after the 60 s interval
        for _ in range(50):  # while that step runs
            poller.wake()
        await asyncio.sleep(0.4)
        assert len(steps) == 2  # fifty wakes, one more step
    finally:
        await poller.stop()


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.01)


async def _notify(url: str, payload: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, payload)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_the_listener_wakes_its_subscriber_and_comes_back_after_a_cut(pg_url: str, monkeypatch) -> None:
    monkeypatch.setattr(notify, "RETRY_MAX_S", 0.5)
    direct = make_url(pg_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
    woken = {"1": 0, "2": 0}
    listener = ChangeListener(direct.set(drivername="postgresql+asyncpg", port=proxy.port))
    listener.subscribe(1, lambda: woken.__setitem__("1", woken["1"] + 1))
    listener.subscribe(2, lambda: woken.__setitem__("2", woken["2"] + 1))
    listener.start()
    try:
        await _until(lambda: listener.listening)
        await _until(lambda: woken == {"1": 1, "2": 1})  # once at start: whatever changed before
        await _notify(pg_url, "1")
        await _until(lambda: woken["1"] == 2)
        await asyncio.sleep(0.1)
        assert woken["2"] == 1  # only the snapshot that changed
        await asyncio.to_thread(proxy.cut)
        await _until(lambda: not listener.listening)
        await _notify(pg_url, "2")  # sent while nobody listens: lost ...
        await asyncio.sleep(0.3)
        assert woken["2"] == 1
        await asyncio.to_thread(proxy.restore)
        await _until(lambda: listener.listening)
        await _until(lambda: woken["2"] == 2)  # ... so every subscriber is woken on listening again
        assert listener.connections == 2
        await _notify(pg_url, "2")
        await _until(lambda: woken["2"] == 3)
    finally:
        await listener.stop()
        await asyncio.to_thread(proxy.stop)
