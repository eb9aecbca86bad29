"""Small, dependency-free statistics over samples and rounds."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (pct in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return percentile(present, 50.0)


def minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b in (None, 0) else a / b


def paired_added(rounds: Sequence[dict], base_rounds: Sequence[dict], key: str) -> float | None:
    """Median over rounds of (hop − direct) for one metric, pairing each round with direct's same round.

    Pairing matters: the machine drifts between rounds, and A B A B interleaving only helps if each
    difference is taken between neighbours in time.
    """
    return median([minus(r.get(key), b.get(key)) for r, b in zip(rounds, base_rounds, strict=False)])
