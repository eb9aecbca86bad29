"""The requests in the foreground (foreground.py): ``quiet`` returns once none is, or at its bound."""

from __future__ import annotations

import asyncio
import time

from sluicegate.foreground import Foreground


async def _returned_within(awaitable, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(seconds):
            await awaitable
    except TimeoutError:
        return False
    return True


async def test_with_no_request_in_the_foreground_quiet_returns_at_once() -> None:
    foreground = Foreground()
    started = time.monotonic()
    await foreground.quiet(5.0)
    foreground.enter()
    foreground.leave()
    await foreground.quiet(5.0)
    assert time.monotonic() - started < 0.5


async def test_quiet_waits_until_the_last_request_leaves() -> None:
    foreground = Foreground()
    foreground.enter()
    foreground.enter()
    waiting = asyncio.ensure_future(foreground.quiet(5.0))
    await asyncio.sleep(0.02)
    foreground.leave()
    await asyncio.sleep(0.02)
    assert not waiting.done()  # one request still awaits its first byte
    foreground.leave()
    assert await _returned_within(waiting, 0.5)
    assert foreground.count == 0


async def test_a_gateway_that_is_never_quiet_waits_only_for_the_bound() -> None:
    foreground = Foreground()
    foreground.enter()
    started = time.monotonic()
    await foreground.quiet(0.05)
    assert 0.04 <= time.monotonic() - started < 0.5
    started = time.monotonic()
    await foreground.quiet(0.0)  # a spent bound: no wait at all
    await foreground.quiet(-1.0)
    assert time.monotonic() - started < 0.02


async def test_every_waiter_is_woken_and_none_is_left_behind() -> None:
    foreground = Foreground()
    foreground.enter()
    short = asyncio.ensure_future(foreground.quiet(0.01))
    long = [asyncio.ensure_future(foreground.quiet(5.0)) for _ in range(2)]
    assert await _returned_within(short, 0.5)  # its bound passed: it is no longer among the waiters
    cancelled = asyncio.ensure_future(foreground.quiet(5.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert len(foreground._waiters) == 2
    foreground.leave()
    for waiting in long:
        assert await _returned_within(waiting, 0.5)
    assert foreground._waiters == []
    foreground.enter()  # a later quiet waits afresh, not on a future already resolved
    again = asyncio.ensure_future(foreground.quiet(5.0))
    await asyncio.sleep(0.02)
    assert not again.done()
    foreground.leave()
    assert await _returned_within(again, 0.5)
