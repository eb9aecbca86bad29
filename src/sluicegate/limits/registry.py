"""The limits snapshot the /v1 step reads (in memory), reloaded when the limits version row changes
(``follow``, which the process's reload loop calls: store/polling.py).

It also keeps in-memory budget usage across restarts: restored at start, flushed every
``FLUSH_INTERVAL_S`` and at shutdown (a crash loses at most that much usage); a deleted subject's is
dropped at the reload its deletion causes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..store.limit_tables import LIMITS_STATE_ID
from ..store.polling import Follower
from .memory import MemoryCounters
from .model import Limits, parse_rate_limits, parse_usage_limits
from .prices import parse_prices, price_of
from .store import LimitRepository

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
    def __init__(self, repository: LimitRepository, memory: MemoryCounters | None = None) -> None:
        self.repository = repository
        self.snapshot = LimitSnapshot()
        self._memory = memory
        self._saved: dict[str, tuple[int, float, int | None]] = {}  # the budget usage the store holds
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def follower(self) -> Follower:
        """What the process's reload loop (store/polling.py) needs to keep this snapshot fresh."""
        return Follower(LIMITS_STATE_ID, self.follow, log,
                        failed=lambda exc: f"could not reload limits: {type(exc).__name__}",
                        recovered="limits reload works again")

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
        await self._forget_deleted()

    async def _forget_deleted(self) -> None:
        """Drop the in-memory counters of subjects deleted since: their saved usage went in the transaction
        that deleted them (which bumped the limits version, hence this reload), and the next flush would
        write it back."""
        memory = self._memory
        held = memory.subjects() if memory is not None else set()
        if memory is not None and held:
            for kind, subject_id in held - await self.repository.existing(held):
                memory.forget(f"{kind}:{subject_id}:")

    async def start(self) -> None:
        if self._memory is not None:
            self._saved = await self.repository.load_usage()
            self._memory.restore(self._saved)
        await self.refresh()  # after the restore, so usage saved for a subject deleted meanwhile goes too
        if self._memory is not None:
            self._tasks.append(asyncio.create_task(self._flush_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self.flush(always=True)
        except Exception as exc:  # the store is gone (deleted, unreachable): shutdown goes on all the same
            log.warning("could not save budget usage at shutdown (%s); the next start counts from the usage "
                        "saved last", exc)

    async def flush(self, *, always: bool = False) -> None:
        """Save the budget usage, unless this process saved exactly that last time (most flushes: no budget
        moved, or none is defined), which spares a write transaction every interval. ``always``: at
        shutdown, the memory's usage replaces whatever the store holds, as it always did."""
        if self._memory is None:
            return
        budgets = self._memory.budgets()
        if always or budgets != self._saved:
            await self.repository.save_usage(budgets)
            self._saved = budgets

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("could not save budget usage: %s", exc)

    async def follow(self, version: int) -> None:
        """The store's limits version is ``version``: reload if it moved."""
        if version != self.snapshot.version:
            await self.refresh()
