"""Prometheus metrics, rendered from plain counters at scrape time.

The request metrics are plain Python counters (dicts and lists) updated by the sink's drain task from each
finished row, and turned into metric families only when /metrics is scraped: that costs about a tenth of
prometheus_client's locked per-label children, and keeps the request path free of it altogether. The
registry is the app's own (never the process-global default), so tests and several apps in one process
don't share counters.

Label cardinality is bounded: provider and model are the only request labels, and after MAX_SERIES
distinct (provider, model) pairs (clients choose model names) new pairs are counted under "other"; so are
the error types of a pair past MAX_ERROR_TYPES (an upstream the client chose names its own).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..routing.load import TargetView

MAX_SERIES = 500
MAX_ERROR_TYPES = 20  # per (provider, model) pair: gateway's own and the usual upstream types fit
OTHER = "other"
UNKNOWN = "unknown"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf only
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le semantics: value == bound falls in that bucket
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(float(bound)), running))
        out.append(("+Inf", self.count))
        return out


@dataclass(slots=True)
class Series:
    """Everything counted for one (provider, model)."""

    by_status: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    retries: int = 0
    fallbacks: int = 0


class RequestStats:
    """Request counters, fed one finished row at a time by the sink's drain task."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self.series: dict[tuple[str, str], Series] = {}
        self.attempts: dict[tuple[str, int], int] = {}  # (provider, status) of every upstream attempt
        self._max = max_series

    def _series(self, provider: str | None, model: str | None) -> Series:
        key = (provider or UNKNOWN, model or UNKNOWN)
        found = self.series.get(key)
        if found is None:
            if len(self.series) >= self._max:
                key = (OTHER, OTHER)
                found = self.series.get(key)
            if found is None:
                found = self.series[key] = Series()
        return found

    def observe(self, row: Mapping[str, Any], attempts: Iterable[Mapping[str, Any]]) -> None:
        series = self._series(row["provider"], row["model"])
        status = row["status"]
        series.by_status[status] = series.by_status.get(status, 0) + 1
        if status >= 400 or row["error_type"]:
            kind = row["error_type"] or "http_error"
            if kind not in series.errors and len(series.errors) >= MAX_ERROR_TYPES:
                kind = OTHER
            series.errors[kind] = series.errors.get(kind, 0) + 1
        series.latency.observe(row["latency_ms"] / 1000.0)
        if row["stream"] and row["ttfb_ms"] is not None:
            series.ttft.observe(row["ttfb_ms"] / 1000.0)
        series.prompt_tokens += row["prompt_tokens"] or 0
        series.completion_tokens += row["completion_tokens"] or 0
        series.cost += row["cost"] or 0.0
        self._observe_attempts(series, attempts)

    def _observe_attempts(self, series: Series, attempts: Iterable[Mapping[str, Any]]) -> None:
        for position, attempt in enumerate(attempts):
            if attempt["retry"]:  # the same target again
                series.retries += 1
            elif position:  # a first try after another target's: a fallback
                series.fallbacks += 1
            key = (attempt["provider"] or UNKNOWN, attempt["status"] or 0)
            if key not in self.attempts and len(self.attempts) >= self._max:
                key = (OTHER, 0)
            self.attempts[key] = self.attempts.get(key, 0) + 1


@dataclass(frozen=True, slots=True)
class SinkGauges:
    queue_depth: int
    queue_capacity: int
    written: int
    spooled: int  # records put in the spool file since start
    replayed: int  # records moved from the spool to the store since start
    spool_bytes: int
    dropped: Mapping[str, int]  # reason → count
    store_up: bool
    spool_up: bool = True  # False while spool writes fail (disk full, read-only): records are being lost
    journal_up: bool = True  # False while journal writes fail: a crash would lose the records not yet written
    paced: int = 0  # requests that waited for the log to catch up (Sink.wait_for_room)
    paced_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class PoolGauges:
    active: int
    idle: int | None  # None: the client does not tell (pyreqwest keeps its idle connections to itself)
    limit: int  # 0: unbounded


class Collector:
    """Turns the counters into metric families when Prometheus scrapes."""

    def __init__(self, stats: RequestStats, sink: Callable[[], SinkGauges],
                 pool: Callable[[], PoolGauges | None]) -> None:
        self._stats, self._sink, self._pool = stats, sink, pool

    def collect(self) -> Iterator[Metric]:
        yield from self._request_families()
        yield from self._attempt_families()
        yield from _sink_families(self._sink())
        pool = self._pool()
        if pool is not None:
            yield from _pool_families(pool)

    def _request_families(self) -> Iterator[Metric]:
        labels = ["provider", "model"]
        requests = CounterMetricFamily("sluicegate_requests", "Requests by provider, model and HTTP status",
                                       labels=[*labels, "status"])
        errors = CounterMetricFamily("sluicegate_request_errors", "Failed requests by error type",
                                     labels=[*labels, "error_type"])
        latency = HistogramMetricFamily("sluicegate_request_duration_seconds", "Request latency", labels=labels)
        ttft = HistogramMetricFamily("sluicegate_time_to_first_token_seconds",
                                     "Streams: time from the request to the first content relayed", labels=labels)
        tokens = CounterMetricFamily("sluicegate_tokens", "Tokens by kind (usage; estimated for streams without)",
                                     labels=[*labels, "kind"])
        cost = CounterMetricFamily("sluicegate_cost_usd", "Cost from the price table", labels=labels)
        retries = CounterMetricFamily("sluicegate_retries", "Upstream retries (same target again)", labels=labels)
        fallbacks = CounterMetricFamily("sluicegate_fallbacks", "Fallbacks to another target", labels=labels)
        for (provider, model), s in list(self._stats.series.items()):
            key = [provider, model]
            for status, count in list(s.by_status.items()):
                requests.add_metric([*key, str(status)], count)
            for kind, count in list(s.errors.items()):
                errors.add_metric([*key, kind], count)
            latency.add_metric(key, s.latency.cumulative(), s.latency.total)
            if s.ttft.count:
                ttft.add_metric(key, s.ttft.cumulative(), s.ttft.total)
            tokens.add_metric([*key, "prompt"], s.prompt_tokens)
            tokens.add_metric([*key, "completion"], s.completion_tokens)
            cost.add_metric(key, s.cost)
            retries.add_metric(key, s.retries)
            fallbacks.add_metric(key, s.fallbacks)
        return iter((requests, errors, latency, ttft, tokens, cost, retries, fallbacks))

    def _attempt_families(self) -> Iterator[Metric]:
        family = CounterMetricFamily("sluicegate_upstream_attempts", "Upstream attempts by provider and status",
                                     labels=["provider", "status"])
        for (provider, status), count in list(self._stats.attempts.items()):
            family.add_metric([provider, str(status)], count)
        yield family


def _sink_families(g: SinkGauges) -> Iterator[Metric]:
    yield GaugeMetricFamily("sluicegate_log_queue_depth", "Records waiting in the log queue", value=g.queue_depth)
    yield GaugeMetricFamily("sluicegate_log_queue_capacity", "Size of the log queue", value=g.queue_capacity)
    yield CounterMetricFamily("sluicegate_log_records_written", "Records written to the store", value=g.written)
    yield CounterMetricFamily("sluicegate_log_records_spooled", "Records spooled while the store was unreachable",
                              value=g.spooled)
    yield CounterMetricFamily("sluicegate_log_records_replayed", "Spooled records later written to the store",
                              value=g.replayed)
    yield GaugeMetricFamily("sluicegate_log_spool_bytes", "Size of the local spool", value=g.spool_bytes)
    dropped = CounterMetricFamily("sluicegate_log_records_dropped", "Records lost, by reason",
                                  labels=["reason"])
    for reason, count in g.dropped.items():
        dropped.add_metric([reason], count)
    yield dropped
    yield GaugeMetricFamily("sluicegate_log_store_up", "1 while the log store accepts writes", value=int(g.store_up))
    yield GaugeMetricFamily("sluicegate_log_spool_up", "0 while the local spool cannot be written (records lost)",
                            value=int(g.spool_up))
    yield GaugeMetricFamily("sluicegate_log_journal_up",
                            "0 while the write-ahead journal cannot be written (a crash would lose records)",
                            value=int(g.journal_up))
    yield CounterMetricFamily("sluicegate_log_paced_requests",
                              "Requests that waited for the request log to catch up before they started",
                              value=g.paced)
    yield CounterMetricFamily("sluicegate_log_paced_seconds", "Time requests spent waiting for the request log",
                              value=g.paced_seconds)


def _pool_families(p: PoolGauges) -> Iterator[Metric]:
    family = GaugeMetricFamily("sluicegate_upstream_connections", "Upstream pool connections", labels=["state"])
    family.add_metric(["active"], p.active)
    if p.idle is not None:
        family.add_metric(["idle"], p.idle)
    yield family
    yield GaugeMetricFamily("sluicegate_upstream_pool_limit", "Upstream pool limit (0: unbounded)", value=p.limit)


def build_registry(collector: Collector, *, process: bool = True) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)  # RSS, CPU, open files of this process
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def pool_gauges(connector: Any) -> PoolGauges | None:
    """aiohttp keeps its pool counts private; read them defensively so a new aiohttp only loses the gauge."""
    if connector is None:
        return None
    acquired = getattr(connector, "_acquired", None)
    idle = getattr(connector, "_conns", None)
    if acquired is None or idle is None:
        return None
    return PoolGauges(len(acquired), sum(len(v) for v in idle.values()), getattr(connector, "limit", 0) or 0)


MAX_TARGET_SERIES = 500  # least-busy targets shown (the board keeps more; /metrics stays bounded)


class TargetGauges:
    """Per-target gauges of least-busy groups, read from the load board at scrape time."""

    def __init__(self, views: Callable[[], Iterable[TargetView]]) -> None:
        self._views = views

    def collect(self) -> Iterator[Metric]:
        labels = ["provider", "target", "model"]
        in_flight = GaugeMetricFamily("sluicegate_target_in_flight",
                                      "Requests this process has in flight at a least-busy target", labels=labels)
        queue = GaugeMetricFamily("sluicegate_target_queue",
                                  "Running + waiting requests the target's server reports (fresh reports only)",
                                  labels=labels)
        cache = GaugeMetricFamily("sluicegate_target_kv_cache_usage",
                                  "KV-cache use the target's server reports, 0..1 (fresh reports only)",
                                  labels=labels)
        healthy = GaugeMetricFamily("sluicegate_target_healthy",
                                    "1 while the target is in rotation (probes and recent failures)", labels=labels)
        for n, view in enumerate(self._views()):
            if n >= MAX_TARGET_SERIES:
                break
            provider, _, rest = view.key.partition("|")
            _host, _, rest = rest.partition("|")
            model = rest.rpartition("|")[0]
            key = [provider or UNKNOWN, view.base_url, model or UNKNOWN]
            in_flight.add_metric(key, view.in_flight)
            healthy.add_metric(key, 1.0 if view.healthy else 0.0)
            if view.server_queue is not None:
                queue.add_metric(key, view.server_queue)
            if view.cache_usage is not None:
                cache.add_metric(key, view.cache_usage)
        return iter((in_flight, queue, cache, healthy))
