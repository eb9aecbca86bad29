"""/metrics for usage limits: refusals, the store's health, requests let through unchecked, alerts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .limiter import LimitStats


class LimitMetrics:
    def __init__(self, stats: LimitStats, backend: str) -> None:
        self._stats = stats
        self._backend = backend

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        refused = CounterMetricFamily("sluicegate_limit_refusals", "Requests refused by a usage limit",
                                      labels=["reason"])
        refused.add_metric(["rate_limited"], s.rate_limited)
        refused.add_metric(["budget_exhausted"], s.budget_exhausted)
        refused.add_metric(["store_unavailable"], s.refused_unavailable)
        yield refused
        yield CounterMetricFamily("sluicegate_limit_store_errors", "Failed calls to the limits store (Redis)",
                                  value=s.store_errors)
        yield CounterMetricFamily("sluicegate_limit_failed_open",
                                  "Requests let through unchecked while the limits store was unreachable",
                                  value=s.failed_open)
        yield CounterMetricFamily("sluicegate_limit_alerts", "Budget alert thresholds crossed (once per period)",
                                  value=s.alerts)
        up = GaugeMetricFamily("sluicegate_limit_store_up", "1 when the last call to the limits store worked",
                               labels=["backend"])
        up.add_metric([self._backend], 1.0 if s.store_up else 0.0)
        yield up
