"""The limits snapshot the /v1 step reads (in memory), reloaded when the limits version row changes
(polled, and checked at once on ``wake()``: a change notification, store/notify.py).

It also keeps in-memory budget usage across restarts: restored at start, flushed every
``FLUSH_INTERVAL_S`` and at shutdown (a crash loses at most that much usage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..store.polling import SnapshotPoller
from .memory import MemoryCounters
from .model import Limits, parse_rate_limits, parse_usage_limits
from .prices import parse_prices, price_of
from .store import LimitRepository

POLL_INTERVAL_S = 0.5
FLUSH_INTERVAL_S = 2.0
log = logging.getLogger("sluicegate.limits")


@dataclass(frozen=True)
class LimitSnapshot:
    version: int = -1
    limits: Mapping[tuple[str, str], Limits] = field(default_factory=lambda: MappingProxyType({}))
    prices: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def any(self) -> bool:
        return any(not limits.empty for limits in self.limits.values())


def snapshot_of(version: int, rows: list[Any]) -> LimitSnapshot:
    limits, prices = {}, {}
    for row in rows:
        try:
            found = Limits(parse_rate_limits(row.rate_limits), parse_usage_limits(row.usage_limits))
            if row.prices:
                prices[row.subject_id] = MappingProxyType(parse_prices(row.prices))
        except ValueError as exc:  # pragma: no cover - rows are validated on the way in
            log.error("limits of %s %s ignored: %s", row.subject_kind, row.subject_id, exc)
            continue
        if not found.empty:
            limits[(row.subject_kind, row.subject_id)] = found
    return LimitSnapshot(version, MappingProxyType(limits), MappingProxyType(prices))


class LimitRegistry:
    def __init__(self, repository: LimitRepository, memory: MemoryCounters | None = None, *,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.repository = repository
        self.snapshot = LimitSnapshot()
        self._memory = memory
        self._tasks: list[asyncio.Task[None]] = []
        self._poller = SnapshotPoller("sluicegate-limits-poll", poll_interval_s, self._reload_if_moved, log,
                                      failed=lambda exc: f"could not reload limits: {type(exc).__name__}",
                                      recovered="limits reload works again")

    def wake(self) -> None:
        self._poller.wake()

    def key_limits(self, key_id: str) -> Limits | None:
        return self.snapshot.limits.get(("key", key_id))

    def workspace_limits(self, workspace_id: str) -> Limits | None:
        return self.snapshot.limits.get(("workspace", workspace_id))

    def provider_limits(self, slug: str) -> Limits | None:
        return self.snapshot.limits.get(("provider", slug))

    def price(self, slug: str | None, model: str | None) -> tuple[float, float] | None:
        prices = self.snapshot.prices.get(slug) if slug else None
        return price_of(prices, model) if prices else None

    async def refresh(self) -> None:
        version, rows = await self.repository.all()
        self.snapshot = snapshot_of(version, rows)

    async def start(self) -> None:
        await self.refresh()
        if self._memory is not None:
            self._memory.restore(await self.repository.load_usage())
            self._tasks.append(asyncio.create_task(self._flush_loop()))
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._memory is not None:
            await self.flush()

    async def flush(self) -> None:
        if self._memory is not None:
            await self.repository.save_usage(self._memory.budgets())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("could not save budget usage: %s", exc)

    async def _reload_if_moved(self) -> None:
        if await self.repository.version() != self.snapshot.version:
            await self.refresh()
