"""One request's limits: admit before the call (raise 429 / 412 / 503), settle with the usage after.

``Limiter.admit`` gathers every applicable limit (the key's, its workspace's, the catalog provider's) into
one all-or-nothing backend call. ``Ticket.settle`` replaces the reservations with the actual usage; it is
called from the request log's task once the answer or the stream has ended (never on the request path).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExhausted, LimitsUnavailable, TooManyRequests
from ..ids import time_sorted_id
from .backend import DEFAULT_TTL_MS, Alert, Counters, StoreUnavailable, Verdict
from .checks import RATE, Check, Estimate, Subject, Usage, actual_amount, plan
from .estimate import DEFAULT_COMPLETION_TOKENS, cost, reserved_tokens

log = logging.getLogger("sluicegate.limits")
UNAVAILABLE = ("Usage limits cannot be checked right now (the limits store is unreachable); "
               "try again shortly")


@dataclass(slots=True)
class LimitStats:
    """What /metrics shows: refusals by kind, store failures, requests let through unchecked, alerts."""

    rate_limited: int = 0
    budget_exhausted: int = 0
    store_errors: int = 0
    failed_open: int = 0
    refused_unavailable: int = 0
    alerts: int = 0
    store_up: bool = True


def _shown(amount: float) -> str:
    """A reservation in a message: whole, or in scientific notation past what anyone reads (max_tokens 1e308)."""
    return f"{amount:.0f}" if amount < 1e15 else f"{amount:.3g}"


def refusal(checks: list[Check], verdict: Verdict) -> Exception:
    """The refusing check → the client's error, with Portkey's headers."""
    check = checks[verdict.failed]
    reset_s = max(1, -(-verdict.reset_ms[verdict.failed] // 1000))
    if check.kind == RATE:
        unit = {60_000: "minute", 3_600_000: "hour", 86_400_000: "day"}[check.window_ms]
        if check.amount > check.limit:  # no wait admits it: SDKs retry a 429 unless told not to
            return TooManyRequests(
                f"Rate limit exceeded for {check.label}: {int(check.limit)} {check.measure} per {unit}, and this "
                f"request alone reserves {_shown(check.amount)}: lower its max_tokens (or max_completion_tokens)",
                headers={"x-should-retry": "false", "x-ratelimit-limit": str(int(check.limit)),
                         "x-ratelimit-remaining": "0"})
        headers = {"Retry-After": str(reset_s), "x-ratelimit-limit": str(int(check.limit)),
                   "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset_s)}
        return TooManyRequests(f"Rate limit exceeded for {check.label}: {int(check.limit)} {check.measure} "
                               f"per {unit}; retry after {reset_s} s", headers=headers)
    when = f"; it resets in {reset_s} s" if verdict.reset_ms[verdict.failed] > 0 else ""
    left = verdict.remaining[verdict.failed]
    return BudgetExhausted(f"Usage limit exhausted for {check.label}: {check.measure} budget of {check.limit:g}, "
                           f"{left:g} left, this request reserves up to {check.amount:g}{when}")


def rate_headers(checks: list[Check], verdict: Verdict) -> dict[str, str]:
    """x-ratelimit-* of the tightest request rate limit, for an admitted answer."""
    best = None
    for i, check in enumerate(checks):
        if check.kind == RATE and check.measure == "requests" and (best is None or
                                                                     verdict.remaining[i] < verdict.remaining[best]):
            best = i
    if best is None:
        return {}
    return {"x-ratelimit-limit": str(int(checks[best].limit)),
            "x-ratelimit-remaining": str(int(verdict.remaining[best])),
            "x-ratelimit-reset": str(max(1, -(-verdict.reset_ms[best] // 1000)))}


@dataclass(slots=True)
class Ticket:
    """An admitted request's reservations, settled once with its actual usage."""

    limiter: Limiter
    checks: list[Check]
    rid: str
    price: tuple[float, float] | None
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False

    def settle(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Non-blocking: queued, and settled with the others queued meanwhile in one backend call."""
        if not self.settled:
            self.settled = True
            usage = Usage(prompt_tokens + completion_tokens, cost(prompt_tokens, completion_tokens, self.price))
            self.limiter.queue_settle(self, usage)


class Limiter:
    def __init__(self, counters: Counters, *, fail_open: bool = False, ttl_ms: int = DEFAULT_TTL_MS,
                 default_completion_tokens: int = DEFAULT_COMPLETION_TOKENS) -> None:
        self.counters = counters
        self.fail_open = fail_open
        self.ttl_ms = ttl_ms
        self.default_completion_tokens = default_completion_tokens
        self.stats = LimitStats()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[tuple[list[Check], str, list[float | None]]] = []

    async def admit(self, subjects: list[Subject], body: dict[str, Any] | None,
                    price: tuple[float, float] | None) -> Ticket | None:
        prompt, completion = reserved_tokens(body, self.default_completion_tokens)
        planned = plan(subjects, Estimate(prompt + completion, cost(prompt, completion, price)))
        if planned.unpriced:
            self.stats.budget_exhausted += 1
            raise BudgetExhausted(f"{planned.unpriced} has a cost budget but this model has no price: "
                                  "set its prices on the catalog provider, or budget it in tokens")
        if not planned.checks:
            return None
        rid = time_sorted_id()  # names the reservation in the counters; random bits without a system call
        try:
            verdict = await self.counters.admit(planned.checks, rid, self.ttl_ms)
        except StoreUnavailable as exc:
            self._unavailable(str(exc))  # raises unless limits fail open
            return None
        self.stats.store_up = True
        if not verdict.admitted:
            error = refusal(planned.checks, verdict)
            if isinstance(error, TooManyRequests):
                self.stats.rate_limited += 1
            else:
                self.stats.budget_exhausted += 1
            log.info("limit refused a request: %s", error)
            raise error
        return Ticket(self, planned.checks, rid, price, rate_headers(planned.checks, verdict))

    def _unavailable(self, reason: str) -> None:
        self.stats.store_errors += 1
        self.stats.store_up = False
        if self.fail_open:
            self.stats.failed_open += 1
            log.warning("limits not checked (SLUICEGATE_LIMITS_FAIL_OPEN=1): %s", reason)
            return
        self.stats.refused_unavailable += 1
        log.error("request refused, limits fail closed: %s", reason)
        raise LimitsUnavailable(UNAVAILABLE)

    def queue_settle(self, ticket: Ticket, usage: Usage) -> None:
        """The request log settles its batch's records one after the other: one round trip for them all."""
        self._pending.append((ticket.checks, ticket.rid, [actual_amount(c, usage) for c in ticket.checks]))
        if len(self._pending) == 1:
            self.spawn(self._settle_pending())

    async def _settle_pending(self) -> None:
        await asyncio.sleep(0)  # let the rest of the batch queue up
        items, self._pending = self._pending, []
        try:
            alerts = await self.counters.settle_many(items)
        except StoreUnavailable as exc:
            self.stats.store_errors += 1
            log.warning("usage not settled (reservations expire by themselves): %s", exc)
            return
        for alert in alerts:
            self._alert(alert)

    async def settle(self, ticket: Ticket, usage: Usage) -> None:
        actual = [actual_amount(check, usage) for check in ticket.checks]
        try:
            alerts = await self.counters.settle(ticket.checks, ticket.rid, actual)
        except StoreUnavailable as exc:
            self.stats.store_errors += 1
            log.warning("usage not settled (its reservation expires by itself): %s", exc)
            return
        for alert in alerts:
            self._alert(alert)

    def _alert(self, alert: Alert) -> None:
        self.stats.alerts += 1
        log.warning("usage alert: %s used %g, alert threshold %g", alert.label, alert.used, alert.threshold)

    async def used(self, subject: Subject) -> float | None:
        """A subject's budget usage this period (settled requests; reservations in flight not counted)."""
        budgets = [c for c in plan([subject], Estimate(0, 0.0)).checks if c.kind != RATE]
        if not budgets:
            return None
        try:
            return await self.counters.used(budgets[0])
        except StoreUnavailable as exc:
            raise LimitsUnavailable(f"Usage cannot be read right now: {exc}") from None

    async def reset(self, key_prefix: str) -> None:
        """Budget usage of one subject back to zero (by hand)."""
        try:
            await self.counters.reset(key_prefix)
        except StoreUnavailable as exc:
            raise LimitsUnavailable(f"Usage cannot be reset right now: {exc}") from None
        log.info("usage reset by hand: %s", key_prefix.rstrip(":"))

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self.counters.close()
