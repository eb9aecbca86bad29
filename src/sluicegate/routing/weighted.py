"""Weighted load balancing: which child a random draw picks. The draw is the caller's (no rng here)."""

from __future__ import annotations

from collections.abc import Sequence


def pick_weighted(weights: Sequence[float], r: float) -> int | None:
    """The index chosen by ``r`` in [0, 1) walking the cumulative weights (Portkey's algorithm).

    A weight of 0 (or less) is never chosen. When no weight is positive there is nothing to choose
    and the answer is None: the schema refuses such a loadbalance group, so None only happens when the
    caller has filtered children (e.g. open circuit breakers) and must decide what to do itself.
    """
    total = sum(weight for weight in weights if weight > 0)
    if total <= 0:
        return None
    point = r * total
    last = None
    cumulative = 0.0
    for index, weight in enumerate(weights):
        if weight <= 0:
            continue
        cumulative += weight
        last = index
        if point < cumulative:
            return index
    # Only float rounding (r very close to 1) gets here: the last positive weight owns the top edge.
    return last
