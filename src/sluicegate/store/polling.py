"""The background reload loop behind the in-memory snapshots the hot path reads (catalog, API keys).

Every ``interval_s`` it runs ``step`` (read the store's version row, reload when it moved), and at once
when ``wake()`` is called (a change notification, store/notify.py): wakes that arrive while a step runs
coalesce into one more step, so a burst of writes costs two reloads, not one per write. A failing step
keeps the last good snapshot serving: its first failure is logged, then nothing until a step works again
(which is logged too when ``recovered`` says what to write), so an outage is not a log line per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..tasks import BackgroundTask


class SnapshotPoller:
    def __init__(self, name: str, interval_s: float, step: Callable[[], Awaitable[object]], log: logging.Logger,
                 *, failed: Callable[[BaseException], str], recovered: str | None = None) -> None:
        self._interval = interval_s
        self._step = step
        self._log = log
        self._failed = failed
        self._recovered = recovered
        self._task = BackgroundTask(name)
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Run a step now instead of at the end of the interval (safe to call before ``start``)."""
        self._woken.set()

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await asyncio.wait_for(self._woken.wait(), self._interval)
            except TimeoutError:
                pass
            self._woken.clear()
            try:
                await self._step()
            except Exception as exc:  # keep serving the last good snapshot whatever the store does
                if not failing:
                    self._log.warning("%s", self._failed(exc))
                failing = True
                continue
            if failing and self._recovered:
                self._log.warning("%s", self._recovered)
            failing = False
