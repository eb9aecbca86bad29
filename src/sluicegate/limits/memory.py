"""Exact counters in one process (one event loop: a check-and-apply never interleaves with another).

The same algorithm as the Redis script (script.lua): sliding logs for rate limits, per-period usage plus
live reservations for budgets. ``budgets()``/``restore()`` let the owner persist budget usage (store.py).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .backend import DEFAULT_TTL_MS, Alert, Verdict
from .checks import RATE, Check, over
from .periods import period_end_ms, period_id


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class TimedAmounts:
    """Amounts by request id, in the order of their times, with their running total: a sliding window's
    admitted requests (the time they were admitted) or a budget's reservations (the time they expire).

    Times only grow as entries are added, so the ones a bound passes are always at the front: pruning costs
    what it removes, not what is held. (A wall clock stepped back can leave a later entry ahead of an
    earlier one's time; it then goes when the one before it does.)"""

    entries: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)  # rid → (ms, amount)
    total: float = 0.0

    def prune(self, upto_ms: int) -> None:
        """Drop the entries whose time is ``upto_ms`` or earlier."""
        entries = self.entries
        while entries:
            rid, (at, amount) = next(iter(entries.items()))
            if at > upto_ms:
                break
            del entries[rid]
            self.total -= amount
        if not entries:
            self.total = 0.0  # no rounding drift carried over

    def add(self, rid: str, at_ms: int, amount: float) -> None:
        _, before = self.entries.pop(rid, (0, 0.0))  # the same request admitted again counts once
        self.entries[rid] = (at_ms, amount)
        self.total += amount - before

    def settle(self, rid: str, amount: float) -> None:
        """The entry's amount becomes ``amount`` (its actual usage); an entry already gone stays gone."""
        if rid in self.entries:
            at, before = self.entries[rid]
            self.entries[rid] = (at, amount)
            self.total += amount - before

    def remove(self, rid: str) -> None:
        held = self.entries.pop(rid, None)
        if held is not None:
            self.total -= held[1]


@dataclass(slots=True)
class Budget:
    """A budget's usage this period, and its reservations in flight (timed by their expiry)."""

    period: int = 0
    used: float = 0.0
    alerted: int | None = None
    reservations: TimedAmounts = field(default_factory=TimedAmounts)

    def roll(self, period: int) -> None:
        if period != self.period:
            self.period, self.used, self.alerted = period, 0.0, None

    def live_reserved(self, now_ms: int) -> float:
        self.reservations.prune(now_ms)
        return max(self.reservations.total, 0.0)


class MemoryCounters:
    def __init__(self, clock: Callable[[], int] = wall_ms) -> None:
        self._clock = clock
        self._logs: dict[str, TimedAmounts] = {}
        self._budgets: dict[str, Budget] = {}

    def _log(self, check: Check, now_ms: int) -> TimedAmounts:
        log = self._logs.get(check.key)
        if log is None:
            log = self._logs[check.key] = TimedAmounts()
        log.prune(now_ms - check.window_ms)
        return log

    def _budget(self, check: Check, now_ms: int) -> Budget:
        budget = self._budgets.setdefault(check.key, Budget(period=period_id(now_ms, check.reset)))
        budget.roll(period_id(now_ms, check.reset))
        return budget

    def _state(self, check: Check, now_ms: int) -> tuple[float, int]:
        """(taken so far, ms until room frees / the period ends)."""
        if check.kind == RATE:
            log = self._log(check, now_ms)
            oldest = next(iter(log.entries.values()))[0] if log.entries else now_ms
            return log.total, oldest + check.window_ms - now_ms
        budget = self._budget(check, now_ms)
        end = period_end_ms(now_ms, check.reset)
        return budget.used + budget.live_reserved(now_ms), (end - now_ms) if end else 0

    async def admit(self, checks: list[Check], rid: str, ttl_ms: int = DEFAULT_TTL_MS) -> Verdict:
        now = self._clock()
        states = [self._state(check, now) for check in checks]
        for i, (check, (taken, _)) in enumerate(zip(checks, states, strict=True)):
            if over(taken + check.amount, check.limit):
                return Verdict(i, tuple(max(0.0, c.limit - t) for c, (t, _) in zip(checks, states, strict=True)),
                               tuple(r for _, r in states))
        for check in checks:
            if check.kind == RATE:
                self._log(check, now).add(rid, now, check.amount)
            else:
                self._budget(check, now).reservations.add(rid, now + ttl_ms, check.amount)
        return Verdict(-1, tuple(c.limit - t - c.amount for c, (t, _) in zip(checks, states, strict=True)),
                       tuple(r for _, r in states))

    async def settle(self, checks: list[Check], rid: str, actual: list[float | None]) -> list[Alert]:
        now = self._clock()
        alerts = []
        for check, amount in zip(checks, actual, strict=True):
            if amount is None:
                continue
            if check.kind == RATE:
                self._log(check, now).settle(rid, amount)
                continue
            budget = self._budget(check, now)
            budget.reservations.remove(rid)
            budget.used += amount
            if check.alert is not None and budget.used >= check.alert and budget.alerted != budget.period:
                budget.alerted = budget.period
                alerts.append(Alert(check.label, check.key, budget.used, check.alert))
        return alerts

    async def settle_many(self, items: list[tuple[list[Check], str, list[float | None]]]) -> list[Alert]:
        alerts = []
        for checks, rid, actual in items:
            alerts += await self.settle(checks, rid, actual)
        return alerts

    async def reset(self, key_prefix: str) -> None:
        """Reset budget usage by hand (reservations in flight stay: their requests still settle)."""
        for key in [k for k in self._budgets if k.startswith(key_prefix)]:
            budget = self._budgets[key]
            budget.used, budget.alerted = 0.0, None

    async def used(self, check: Check) -> float:
        return self._budget(check, self._clock()).used

    def budgets(self) -> dict[str, tuple[int, float, int | None]]:
        """Budget usage to persist: key → (period, used, alerted period)."""
        return {key: (b.period, b.used, b.alerted) for key, b in self._budgets.items()}

    def restore(self, saved: dict[str, tuple[int, float, int | None]]) -> None:
        for key, (period, used, alerted) in saved.items():
            self._budgets[key] = Budget(period, used, alerted)

    def subjects(self) -> set[tuple[str, str]]:
        """The (kind, id) of every subject these counters hold state for (their keys are ``kind:id:…``)."""
        held = set()
        for key in (*self._budgets, *self._logs):
            kind, _, rest = key.partition(":")
            held.add((kind, rest.partition(":")[0]))
        return held

    def forget(self, key_prefix: str) -> None:
        """Drop every counter under ``key_prefix`` (a deleted subject's), its budget usage included."""
        self._budgets = {key: b for key, b in self._budgets.items() if not key.startswith(key_prefix)}
        self._logs = {key: log for key, log in self._logs.items() if not key.startswith(key_prefix)}

    async def close(self) -> None:
        return None
