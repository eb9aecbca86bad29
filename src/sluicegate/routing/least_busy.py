"""Least-busy load balancing: which child of a ``loadbalance`` group will answer first.

Power of two choices: two distinct candidates are drawn by weight (weights act as a prior, so a weight-3
target is compared about three times as often as a weight-1 one), and the one with the lower score wins;
equal scores are broken by a draw between the two, by weight again. Comparing two random candidates instead
of taking the global minimum keeps several gateways (or workers) from stampeding onto the one target that
looked idle a moment ago.

A score estimates how long a new request would wait: the requests ahead of it (what this gateway has in
flight there, or what the server itself reports when that report is fresh, whichever is larger) plus its own,
times what one request has recently cost there (the EWMA of latency), plus the EWMA of time to first token. A target
that fails is penalised by its run of consecutive failures and its failure rate, so a target that answers
errors fast never looks idle. Pure: the caller passes every figure and the randomness.

Latency evidence ages: a target's EWMAs change only when a request goes there, so one slow answer would
otherwise keep it scored slow, and never picked again at light load, long after it recovered. ``Load.evidence``
(routing/load.py: halves every few seconds without a new sample) says how much its figures still count: they
are scored as ``typical + evidence * (measured - typical)``, where typical is the candidates' mean weighted by
their evidence, and figures old enough are dropped altogether (the target is scored like a new one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

FAILURE_RATE_WEIGHT = 10.0  # a target failing every request scores 11 times worse on this alone
FAILURE_FACTOR = 8.0  # each consecutive failure multiplies the score by this ...
MAX_FAILURE_STEPS = 4  # ... up to 8**4 = 4096 times
FULL_CACHE = 0.95  # a KV cache this full means preemption: the multiplier stops growing here (x20)
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Load:
    """What is known about one target right now (all of it optional except the exact in-flight count)."""

    in_flight: int = 0  # requests this gateway has sent there and not seen finish
    # EWMAs of what one request costs there: time to first token (to the answer's head for a non-stream) and
    # whole-request latency, each divided by the requests in flight there when it started (routing/load.py)
    ttft_ms: float | None = None
    latency_ms: float | None = None
    # How much those two still count, in (0, 1]: 1 when just measured, halving with each half-life since
    # (routing/load.py). Stale figures are pulled toward the group's typical ones.
    evidence: float = 1.0
    failures: int = 0  # consecutive failed attempts since its last success
    error_rate: float = 0.0  # EWMA of failure (0: none, 1: every attempt)
    server_queue: float | None = None  # the server's running + waiting requests, when that report is fresh
    cache_usage: float | None = None  # the server's KV-cache use in [0, 1], when fresh


@dataclass(frozen=True, slots=True)
class Choice:
    index: int  # into the caller's sequences
    compared: tuple[int, ...]  # the sampled candidates (one when only one could be drawn)
    scores: tuple[float, ...]  # their scores, same order
    reason: str  # "only candidate" | "lower score" | "tie"


def score(load: Load, typical_latency_ms: float, typical_ttft_ms: float) -> float:
    """Estimated wait in milliseconds (lower is better). ``typical_*`` stand in for a target not measured yet."""
    queue = float(load.in_flight)
    if load.server_queue is not None:
        queue = max(queue, load.server_queue)
    latency = _aged(load.latency_ms, typical_latency_ms, load.evidence)
    ttft = _aged(load.ttft_ms, typical_ttft_ms, load.evidence)
    if load.failures:
        # A failing target's old speed is no promise: never cheaper than a typical one, so the penalties
        # below multiply something real even when its last successes were very fast.
        latency, ttft = max(latency, typical_latency_ms), max(ttft, typical_ttft_ms)
    # The new request waits for the queue ahead and then for its own turn: (queue + 1) turns of one request's
    # cost. Counting its own turn keeps an idle target's score at its cost, so a slow idle target still loses
    # to a fast one with a short queue, and a failing idle target's penalty multiplies something real. The
    # +1 on the latency keeps targets nobody has measured yet comparable by their queues alone.
    estimate = (queue + 1.0) * (latency + 1.0) + ttft
    if load.cache_usage is not None:
        estimate /= 1.0 - min(max(load.cache_usage, 0.0), FULL_CACHE)
    estimate *= 1.0 + FAILURE_RATE_WEIGHT * min(max(load.error_rate, 0.0), 1.0)
    return estimate * FAILURE_FACTOR ** min(load.failures, MAX_FAILURE_STEPS)


def choose_least_busy(weights: Sequence[float], loads: Sequence[Load], rng: Callable[[], float]) -> Choice | None:
    """The child to use, or None when no weight is positive. ``rng`` gives floats in [0, 1)."""
    positive = [i for i, weight in enumerate(weights) if weight > 0]
    if not positive:
        return None
    typical_latency, typical_ttft = _typical(loads, positive)
    if len(positive) == 1:
        only = positive[0]
        return Choice(only, (only,), (score(loads[only], typical_latency, typical_ttft),), "only candidate")
    first = _draw(weights, positive, rng())
    rest = [i for i in positive if i != first]
    second = _draw(weights, rest, rng())
    a = score(loads[first], typical_latency, typical_ttft)
    b = score(loads[second], typical_latency, typical_ttft)
    if abs(a - b) <= TIE_TOLERANCE * max(a, b, 1.0):
        # Ties go by weight too, so the prior still speaks when there are only two targets to draw.
        index = first if rng() * (weights[first] + weights[second]) < weights[first] else second
        reason = "tie"
    else:
        index, reason = (first, "lower score") if a < b else (second, "lower score")
    return Choice(index, (first, second), (a, b), reason)


def _draw(weights: Sequence[float], among: Sequence[int], r: float) -> int:
    total = sum(weights[i] for i in among)
    point = r * total
    cumulative = 0.0
    for i in among:
        cumulative += weights[i]
        if point < cumulative:
            return i
    return among[-1]  # float rounding with r close to 1


def _aged(measured: float | None, typical: float, evidence: float) -> float:
    """A figure as far from typical as its evidence still supports (typical when there is none)."""
    if measured is None:
        return typical
    return typical + min(max(evidence, 0.0), 1.0) * (measured - typical)


def _typical(loads: Sequence[Load], among: Sequence[int]) -> tuple[float, float]:
    """Mean measured latency and TTFT of the candidates, each weighted by how fresh it is: an unmeasured
    target is assumed typical, so it is neither shunned nor flooded before its first answer, and a stale
    figure counts little (a recovered target's old slow answer must not hold the typical value up)."""
    return (_weighted_mean([(loads[i].latency_ms, loads[i].evidence) for i in among]),
            _weighted_mean([(loads[i].ttft_ms, loads[i].evidence) for i in among]))


def _weighted_mean(figures: Sequence[tuple[float | None, float]]) -> float:
    total = weight = 0.0
    for value, evidence in figures:
        if value is not None:
            w = min(max(evidence, 0.0), 1.0)
            total += w * value
            weight += w
    return total / weight if weight > 0 else 0.0
