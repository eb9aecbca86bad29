"""The readiness verdict from cached probes: what makes a process unready, and what only degrades it."""

from __future__ import annotations

import asyncio

from sluicegate.server.readiness import Readiness


class Switch:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("postgresql://user:secret@db/x refused")  # never shown


class Hang:
    async def __call__(self) -> None:
        await asyncio.sleep(60)


async def test_ready_then_unready_with_the_reason_then_ready_again() -> None:
    store = Switch()
    readiness = Readiness({"store": store}, interval_s=3600)
    await readiness.start()
    try:
        assert readiness.verdict() == (200, {"status": "ready", "checks": {"store": "ok"}})
        store.up = False
        await readiness.probe()
        status, body = readiness.verdict()
        assert (status, body["status"], body["reason"]) == (503, "unavailable", "store unreachable")
        assert "secret" not in repr(body)
        calls = store.calls
        for _ in range(100):
            readiness.verdict()  # answered from the cache: no probe per call
        assert store.calls == calls
        store.up = True
        await readiness.probe()
        assert readiness.verdict()[0] == 200
    finally:
        await readiness.stop()


async def test_redis_counts_only_while_required() -> None:
    redis, limits = Switch(), {"defined": False}
    readiness = Readiness({"store": Switch(), "redis": redis}, required={"redis": lambda: limits["defined"]},
                          interval_s=3600)
    await readiness.start()
    try:
        redis.up = False
        await readiness.probe()
        assert readiness.verdict() == (200, {"status": "ready", "checks": {"store": "ok", "redis": "unreachable"}})
        limits["defined"] = True  # usage limits now need it (failing closed)
        assert readiness.verdict()[1]["reason"] == "redis unreachable"
    finally:
        await readiness.stop()


async def test_a_probe_that_hangs_counts_as_unreachable_within_its_timeout() -> None:
    readiness = Readiness({"store": Hang()}, interval_s=3600, timeout_s=0.1)
    await asyncio.wait_for(readiness.start(), 2)
    try:
        assert readiness.verdict()[1]["reason"] == "store unreachable"
    finally:
        await readiness.stop()


async def test_draining_wins_over_everything() -> None:
    readiness = Readiness({"store": Switch()}, interval_s=3600)
    await readiness.start()
    readiness.drain()
    try:
        assert readiness.verdict() == (503, {"status": "draining", "reason": "the process is shutting down",
                                             "checks": {"store": "ok"}})
    finally:
        await readiness.stop()
