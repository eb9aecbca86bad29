"""What users set (Portkey's shapes), validated once into frozen values.

  rate_limits   [{"type": "requests" | "tokens", "unit": "rpm" | "rph" | "rpd", "value": N}]
  usage_limits  {"type": "cost" | "tokens", "credit_limit": N, "periodic_reset": "daily" | "weekly" |
                 "monthly" | null, "alert_threshold": N | null}

A bad value is a ``LimitError`` (a 400 naming the field); nothing here touches a clock or the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest

RATE_TYPES = ("requests", "tokens")
UNITS = {"rpm": 60, "rph": 3600, "rpd": 86400}
BUDGET_TYPES = ("cost", "tokens")
RESETS = ("daily", "weekly", "monthly")
# The largest integer every JSON reader holds exactly (and the response encoder writes): a count above it is
# a typo, and once stored it could not be answered back.
MAX_COUNT = 2**53 - 1


class LimitError(BadRequest):
    """A rate or usage limit that does not validate."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    type: str  # requests | tokens
    unit: str  # rpm | rph | rpd
    value: int

    @property
    def window_ms(self) -> int:
        return UNITS[self.unit] * 1000

    def shape(self) -> dict[str, Any]:
        return {"type": self.type, "unit": self.unit, "value": self.value}


@dataclass(frozen=True, slots=True)
class UsageLimit:
    type: str  # cost | tokens
    credit_limit: float
    periodic_reset: str | None  # daily | weekly | monthly | None (never)
    alert_threshold: float | None

    def shape(self) -> dict[str, Any]:
        return {"type": self.type, "credit_limit": self.credit_limit,
                "periodic_reset": self.periodic_reset, "alert_threshold": self.alert_threshold}


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one subject (an API key, a workspace or a catalog provider)."""

    rate_limits: tuple[RateLimit, ...] = ()
    usage_limits: UsageLimit | None = None

    @property
    def empty(self) -> bool:
        return not self.rate_limits and self.usage_limits is None


NO_LIMITS = Limits()
# How often a budget refills, most often first: for the same credit, a later one binds tighter (never: tightest).
_REFILLS = {"daily": 0, "weekly": 1, "monthly": 2, None: 3}


def looser_part(limits: Limits, bound: Limits) -> str | None:
    """What ``limits`` lacks to bind at least as tightly as ``bound`` (a rate limit of each of bound's type
    and unit with no higher value; a budget of bound's type with no higher credit that refills no more often),
    said as what is needed; None when nothing is lacking."""
    for needed in bound.rate_limits:
        if not any(rate.type == needed.type and rate.unit == needed.unit and rate.value <= needed.value
                   for rate in limits.rate_limits):
            return f"a {needed.type} rate limit of at most {needed.value} {needed.unit}"
    needed_budget, budget = bound.usage_limits, limits.usage_limits
    if needed_budget is not None and (
            budget is None or budget.type != needed_budget.type or budget.credit_limit > needed_budget.credit_limit
            or _REFILLS[budget.periodic_reset] < _REFILLS[needed_budget.periodic_reset]):
        refill = f"reset {needed_budget.periodic_reset} or less often" if needed_budget.periodic_reset else "no reset"
        return f"a {needed_budget.type} budget of at most {needed_budget.credit_limit:g} ({refill})"
    return None


def _number(value: object, field: str, *, integer: bool = False) -> float:
    # NaN and the infinities pass a comparison with 0 (an infinite budget was stored as null: no limit).
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise LimitError(f"'{field}' must be a positive {'integer' if integer else 'number'}")
    if integer and (not float(value).is_integer() or value > MAX_COUNT):
        raise LimitError(f"'{field}' must be a positive integer (at most {MAX_COUNT})")
    return value


def parse_rate_limits(raw: object) -> tuple[RateLimit, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):  # one limit (the portkey-ai SDK types a provider's rate_limits as one object)
        raw = [raw]
    if not isinstance(raw, list):
        raise LimitError("'rate_limits' must be a list of {type, unit, value}")
    limits = []
    for i, item in enumerate(raw):
        where = f"rate_limits[{i}]"
        if not isinstance(item, dict):
            raise LimitError(f"'{where}' must be an object {{type, unit, value}}")
        kind, unit = item.get("type", "requests"), item.get("unit")
        if kind not in RATE_TYPES:
            raise LimitError(f"'{where}.type' must be one of {', '.join(RATE_TYPES)}")
        if not isinstance(unit, str) or unit not in UNITS:  # a list there cannot be looked up
            raise LimitError(f"'{where}.unit' must be one of {', '.join(UNITS)}")
        limits.append(RateLimit(kind, unit, int(_number(item.get("value"), f"{where}.value", integer=True))))
    return tuple(limits)


def parse_usage_limits(raw: object) -> UsageLimit | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise LimitError("'usage_limits' must be an object {type, credit_limit, periodic_reset, alert_threshold}")
    kind = raw.get("type", "cost")
    if kind not in BUDGET_TYPES:
        raise LimitError(f"'usage_limits.type' must be one of {', '.join(BUDGET_TYPES)}")
    credit = float(_number(raw.get("credit_limit"), "usage_limits.credit_limit"))
    reset = raw.get("periodic_reset")
    if reset is not None and reset not in RESETS:
        raise LimitError(f"'usage_limits.periodic_reset' must be one of {', '.join(RESETS)} or null")
    alert = raw.get("alert_threshold")
    threshold = None if alert is None else float(_number(alert, "usage_limits.alert_threshold"))
    return UsageLimit(kind, credit, reset, threshold)


def parse_limits(raw: dict[str, Any]) -> Limits:
    """``{"rate_limits": …, "usage_limits": …}`` (either may be absent) → ``Limits``."""
    return Limits(parse_rate_limits(raw.get("rate_limits")), parse_usage_limits(raw.get("usage_limits")))
