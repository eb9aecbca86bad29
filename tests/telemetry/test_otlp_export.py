"""OTLP export over the wire: the exporter against a fake collector, then a real gateway process."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from sluicegate.telemetry.exporter import OtlpExporter
from tests.fakes.collector import FakeCollector
from tests.gateway import GatewayProcess, free_port

from .helpers import builder, record

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
CLIENT_KEY = "sk-otlp-client-secret-2f9c41"
PORTKEY_KEY = "portkey-otlp-secret-7d1e08"
COLLECTOR_TOKEN = "collector-secret-8f3a2c55"


@pytest.fixture
def collector():
    server = FakeCollector().start()
    yield server
    server.stop()


def rows(n: int):
    return [builder().build(record(headers={"x-portkey-trace-id": f"t-{i}"})) for i in range(n)]


async def test_batches_reach_the_collector_and_close_flushes(collector):
    exporter = OtlpExporter(collector.url, {"x-collector-token": COLLECTOR_TOKEN}, interval=30.0, batch_max=4)
    await exporter.start()
    for row, attempts in rows(6):
        exporter.offer(row, attempts)
    await exporter.close()  # one full batch went at once; close flushes the other two
    assert len(collector.spans()) == 6 and (exporter.exported, exporter.dropped) == (6, 0)
    assert len(collector.bodies) == 2
    assert all(h["x-collector-token"] == COLLECTOR_TOKEN and h["content-type"] == "application/json"
               for h in collector.headers)


async def test_a_failing_collector_costs_counted_spans_and_one_warning(collector, caplog):
    collector.status = 503
    exporter = OtlpExporter(collector.url, interval=0.05, batch_max=2)
    await exporter.start()
    with caplog.at_level(logging.WARNING, logger="sluicegate.telemetry"):
        for row, attempts in rows(6):
            exporter.offer(row, attempts)
            await exporter_idle(exporter)
        collector.status = 200
        row, attempts = rows(1)[0]
        exporter.offer(row, attempts)
        await exporter.close()
    assert (exporter.dropped, exporter.exported) == (6, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed (HTTP 503)" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1


async def exporter_idle(exporter: OtlpExporter) -> None:
    """Wait (bounded) until the exporter has taken every queued span."""
    for _ in range(200):
        if not exporter.pending:
            await asyncio.sleep(0.1)  # the POST in flight
            return
        await asyncio.sleep(0.01)


async def test_an_absent_collector_drops_and_close_is_bounded():
    exporter = OtlpExporter(f"http://127.0.0.1:{free_port()}", interval=0.05)
    await exporter.start()
    for row, attempts in rows(3):
        exporter.offer(row, attempts)
    started = time.monotonic()
    await exporter.close()
    assert time.monotonic() - started < 5
    assert exporter.dropped == 3 and not exporter.up


def chat(gateway: GatewayProcess, upstream, **headers: str) -> httpx.Response:
    sent = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
            "authorization": f"Bearer {CLIENT_KEY}", "x-portkey-api-key": PORTKEY_KEY, **headers}
    return httpx.post(f"{gateway.v1}/chat/completions", headers=sent, timeout=10,
                      json={"model": "m", "messages": [{"role": "user", "content": f"hello {CLIENT_KEY}"}]})


def test_a_gateway_exports_a_span_per_request(tmp_path, upstream, collector):
    env = {"SLUICEGATE_OTLP_ENDPOINT": collector.url, "SLUICEGATE_OTLP_HEADERS": f"x-collector-token={COLLECTOR_TOKEN}"}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        answer = chat(gateway, upstream, traceparent=f"00-{TRACE}-{PARENT}-01", **{"x-portkey-trace-id": "tr-e2e"})
        assert answer.status_code == 200, answer.text
        assert upstream.last.headers["authorization"] == f"Bearer {CLIENT_KEY}"
        span, = collector.wait_for(lambda s: s["traceId"] == TRACE)
        metrics = httpx.get(f"{gateway.url}/metrics").text
    finally:
        gateway.stop()
    attributes = {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}
    assert span["parentSpanId"] == PARENT and len(span["spanId"]) == 16
    assert attributes["gen_ai.system"] == "openai" and attributes["gen_ai.request.model"] == "m"
    assert attributes["http.response.status_code"] == "200" and attributes["sluicegate.trace_id"] == "tr-e2e"
    assert attributes["gen_ai.usage.input_tokens"] == "5"
    assert collector.headers[0]["x-collector-token"] == COLLECTOR_TOKEN
    received = b"".join(collector.bodies)
    assert not [s for s in (CLIENT_KEY, PORTKEY_KEY, COLLECTOR_TOKEN, "hello") if s.encode() in received]
    assert "sluicegate_otlp_exported_spans_total 1.0" in metrics
    assert COLLECTOR_TOKEN not in gateway.log()


def test_requests_succeed_while_the_collector_is_down(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data",
                             env={"SLUICEGATE_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}).start()
    try:
        for _ in range(3):
            assert chat(gateway, upstream).status_code == 200
        deadline, dropped = time.monotonic() + 10, 0.0
        while time.monotonic() < deadline and dropped < 3:
            text = httpx.get(f"{gateway.url}/metrics").text
            line = next((x for x in text.splitlines() if x.startswith("sluicegate_otlp_dropped_spans_total")), "")
            dropped = float(line.split()[-1]) if line else 0.0
            time.sleep(0.1)
    finally:
        gateway.stop()
    assert dropped == 3
    assert gateway.log().count("dropping spans until it answers") == 1  # one warning per outage, not per batch
