"""Prometheus output: the app's own registry, bounded labels, nothing personal."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sluicegate.telemetry.metrics import (
    MAX_ERROR_TYPES,
    OTHER,
    Collector,
    Histogram,
    PoolGauges,
    RequestStats,
    SinkGauges,
    build_registry,
    render,
)

from .helpers import builder, record

SINK = SinkGauges(queue_depth=3, queue_capacity=10, written=7, spooled=2, replayed=1, spool_bytes=99,
                  dropped={"queue_full": 4}, store_up=True, paced=6, paced_seconds=1.5)


def scrape(stats: RequestStats, pool=None) -> dict:
    registry = build_registry(Collector(stats, lambda: SINK, lambda: pool), process=False)
    samples = {}
    for family in text_string_to_metric_families(render(registry).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_requests_latency_tokens_and_sink_gauges():
    stats = RequestStats()
    for status in (200, 200, 500):
        row, attempts = builder().build(record(status=status,
                                               headers={"x-portkey-trace-id": "trace-should-not-show",
                                                        "x-portkey-metadata": '{"_user": "user-should-not-show"}'}))
        stats.observe(row, attempts)
    samples = scrape(stats, PoolGauges(active=2, idle=5, limit=0))
    key = (("model", "m"), ("provider", "openai"))
    assert samples[("sluicegate_requests_total", key + (("status", "200"),))] == 2
    assert samples[("sluicegate_requests_total", key + (("status", "500"),))] == 1
    assert samples[("sluicegate_request_errors_total", (("error_type", "upstream_error"),) + key)] == 1
    assert samples[("sluicegate_request_duration_seconds_count", key)] == 3
    assert samples[("sluicegate_tokens_total", (("kind", "prompt"),) + key)] == 15
    assert samples[("sluicegate_upstream_attempts_total", (("provider", "openai"), ("status", "500")))] == 1
    assert samples[("sluicegate_log_queue_depth", ())] == 3
    assert samples[("sluicegate_log_records_dropped_total", (("reason", "queue_full"),))] == 4
    assert samples[("sluicegate_log_paced_requests_total", ())] == 6
    assert samples[("sluicegate_log_paced_seconds_total", ())] == 1.5
    assert samples[("sluicegate_upstream_connections", (("state", "idle"),))] == 5
    text = render(build_registry(Collector(stats, lambda: SINK, lambda: None))).decode()
    assert "trace-should-not-show" not in text and "user-should-not-show" not in text
    assert "sluicegate_requests_total" not in render(REGISTRY).decode()  # never the global registry


def test_label_cardinality_is_bounded():
    stats = RequestStats(max_series=5)
    for i in range(50):
        row, attempts = builder().build(record(body={"model": f"model-{i}", "messages": [{"content": "x"}]}))
        stats.observe(row, attempts)
    assert len(stats.series) == 6  # five real pairs and "other"
    assert sum(sum(s.by_status.values()) for s in stats.series.values()) == 50


def test_error_types_of_one_pair_are_bounded():
    """An upstream the client chose names its errors: 300 types made 300 series under one pair."""
    stats = RequestStats()
    row = {"provider": "openai", "model": "m", "status": 400, "latency_ms": 5.0, "stream": False, "ttfb_ms": None,
           "prompt_tokens": None, "completion_tokens": None, "cost": None}
    for i in range(300):
        stats.observe({**row, "error_type": f"ET{i}-" + "Z" * 200}, [])
    (series,) = stats.series.values()
    assert len(series.errors) == MAX_ERROR_TYPES + 1 and series.errors[OTHER] == 300 - MAX_ERROR_TYPES
    assert sum(series.errors.values()) == 300


def test_retries_and_fallbacks_from_the_attempt_chain():
    stats = RequestStats()
    row = {"provider": "openai", "model": "m", "status": 200, "error_type": None, "latency_ms": 5.0, "stream": False,
           "ttfb_ms": 1.0, "prompt_tokens": None, "completion_tokens": None, "cost": None}
    attempts = [{"path": p, "provider": "openai", "status": s, "retry": r}
                for p, s, r in [("config.targets[0]", 503, 0), ("config.targets[0]", 503, 1),
                                ("config.targets[1]", 200, 0)]]
    stats.observe(row, attempts)
    series = stats.series[("openai", "m")]
    assert (series.retries, series.fallbacks) == (1, 1)


def test_histogram_buckets_are_cumulative_with_le_semantics():
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0):
        h.observe(value)
    assert h.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]


def test_no_nul_reaches_a_label_value(gateway, upstream):
    """A NUL in the model a client names, or in the error type an upstream answers, used to reach /metrics
    verbatim (and break Prometheus' parser). Label values come from the stored rows: storable text."""
    import httpx

    from tests.fakes.upstream import Reply

    upstream.push(Reply(status=400, json={"error": {"type": "bad\u0000type", "message": "no"}}))
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1, "content-type": "application/json"}
    for _ in range(2):
        httpx.post(f"{gateway.v1}/chat/completions", headers=headers,
                   content=b'{"model": "nul\\u0000model", "messages": [{"role": "user", "content": "x"}]}')

    def scraped() -> bytes:
        return httpx.get(f"{gateway.url}/metrics").content

    from .test_outage import until
    until(lambda: 'model="nul\ufffdmodel"'.encode() in scraped(), timeout=15, what="the request counted")
    text = scraped()
    assert b"\x00" not in text and 'error_type="bad\ufffdtype"'.encode() in text
    list(text_string_to_metric_families(text.decode()))  # parses
