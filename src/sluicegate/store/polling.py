"""The background reload loop behind the in-memory snapshots the hot path reads (catalog, API keys, limits).

One loop per process serves them all: every ``interval_s`` it reads every version row at once (one SELECT
of ``catalog_state``, periodic_reads.py) and hands each snapshot its row's version; a snapshot whose version
moved reloads.
It runs at once when ``wake()`` is called (a change notification, store/notify.py); wakes that arrive
while a step runs coalesce into one more step, so a burst of writes costs two checks, not one per write.
A failing read or reload keeps the last good snapshot serving: each snapshot's first failure is logged,
then nothing until a step works for it again (which is logged too when it says what to write), so an
outage is not a log line per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..tasks import BackgroundTask
from .periodic_reads import PeriodicReads


@dataclass(frozen=True)
class Follower:
    """A snapshot kept fresh by the watch: ``follow(version)`` gets its row's version now and reloads when
    that moved from the snapshot's own (or when a retry is due)."""

    state_id: int
    follow: Callable[[int], Awaitable[object]]
    log: logging.Logger
    failed: Callable[[BaseException], str]
    recovered: str | None = None


class VersionWatch:
    def __init__(self, reads: PeriodicReads, interval_s: float, *, name: str = "sluicegate-reload") -> None:
        self._reads = reads
        self._interval = interval_s
        self._followers: list[Follower] = []
        self._failing: set[int] = set()  # indexes into _followers whose last step failed
        self._task = BackgroundTask(name)
        self._woken = asyncio.Event()

    def add(self, follower: Follower) -> None:
        self._followers.append(follower)

    def wake(self) -> None:
        """Run a step now instead of at the end of the interval (safe to call before ``start``)."""
        self._woken.set()

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._woken.wait(), self._interval)
            except TimeoutError:
                pass
            self._woken.clear()
            await self.step()

    async def step(self) -> None:
        """One check of every follower (the loop's step; tests call it to check without waiting)."""
        try:
            versions = await self._reads.versions()
        except Exception as exc:  # the store is down: every snapshot keeps serving its last good state
            for index in range(len(self._followers)):
                self._failed(index, exc)
            return
        for index, follower in enumerate(self._followers):
            try:
                await follower.follow(versions.get(follower.state_id, 0))
            except Exception as exc:
                self._failed(index, exc)
                continue
            if index in self._failing:
                self._failing.discard(index)
                if follower.recovered:
                    follower.log.warning("%s", follower.recovered)

    def _failed(self, index: int, exc: BaseException) -> None:
        if index not in self._failing:
            follower = self._followers[index]
            follower.log.warning("%s", follower.failed(exc))
        self._failing.add(index)
