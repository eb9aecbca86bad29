"""One request's checks: every limit of every subject (key, workspace, provider) as a counter to test.

``plan`` is pure: it turns the subjects' ``Limits`` and the request's estimate into ``Check`` values
that a backend (memory.py, redis_backend.py) tests and applies in one all-or-nothing step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Limits

RATE, BUDGET = "rate", "budget"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a limit belongs to: ``kind`` key | workspace | provider, its id, and its limits."""

    kind: str
    id: str
    limits: Limits

    @property
    def label(self) -> str:
        return {"key": "API key", "workspace": "workspace", "provider": "provider"}.get(self.kind, self.kind) + \
            f" '{self.id}'"


@dataclass(frozen=True, slots=True)
class Check:
    key: str  # the counter's name (without the backend's prefix)
    kind: str  # RATE | BUDGET
    limit: float
    amount: float  # what this request takes now (1 request, estimated tokens or cost)
    measure: str  # requests | tokens | cost
    label: str  # "API key 'ak-…'", for messages
    window_ms: int = 0  # RATE: the sliding window
    reset: str | None = None  # BUDGET: daily | weekly | monthly | None
    alert: float | None = None  # BUDGET: alert threshold


def over(total: float, limit: float) -> bool:
    """Is ``total`` beyond ``limit``, by more than a float's rounding? Costs are sums of binary fractions:
    0.1 + 0.1 + 0.1 is 0.30000000000000004, and a cost budget of 0.3 refused a third request of 0.1 that
    fits it. The same test runs in the Redis script (script.lua)."""
    return total - limit > 1e-9 * max(1.0, abs(limit))


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: int
    cost: float | None  # None: the model has no price


@dataclass(frozen=True, slots=True)
class Usage:
    """What a request actually used (0 when it failed before any usage was reported)."""

    tokens: int
    cost: float | None = None


@dataclass(slots=True)
class Plan:
    checks: list[Check] = field(default_factory=list)
    unpriced: str | None = None  # a cost budget's label when the model has no price


def counter_key(subject: Subject, suffix: str) -> str:
    return f"{subject.kind}:{subject.id}:{suffix}"


def plan(subjects: list[Subject], estimate: Estimate) -> Plan:
    result = Plan()
    for subject in subjects:
        for rate in subject.limits.rate_limits:
            amount = 1.0 if rate.type == "requests" else float(estimate.tokens)
            result.checks.append(Check(counter_key(subject, f"rl:{rate.type}:{rate.unit}"), RATE, rate.value,
                                       amount, rate.type, subject.label, window_ms=rate.window_ms))
        budget = subject.limits.usage_limits
        if budget is None:
            continue
        if budget.type == "cost" and estimate.cost is None:
            result.unpriced = result.unpriced or subject.label
            continue
        amount = float(estimate.tokens) if budget.type == "tokens" else float(estimate.cost or 0.0)
        result.checks.append(Check(counter_key(subject, f"bu:{budget.type}"), BUDGET, budget.credit_limit, amount,
                                   budget.type, subject.label, reset=budget.periodic_reset,
                                   alert=budget.alert_threshold))
    return result


def actual_amount(check: Check, usage: Usage) -> float | None:
    """What a check is settled with; None for a request count (nothing to reconcile)."""
    if check.measure == "requests":
        return None
    if check.measure == "tokens":
        return float(usage.tokens)
    return float(usage.cost or 0.0)
