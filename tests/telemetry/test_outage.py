"""A store outage mid-run: PostgreSQL behind a TCP forwarder the test cuts and restores.

Requests keep being served; records go to the bounded local spool meanwhile and are replayed once the store
answers again, each exactly once. Past the spool's bound, records are dropped, counted and warned about.
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN
from tests.tcpproxy import TcpProxy

from .load import count_rows, fire

pytestmark = pytest.mark.postgres


def metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def proxied(pg_url):
    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.stop()


def start(tmp_path, database_url: str, **env: str) -> GatewayProcess:
    return GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN,
                                                  "SLUICEGATE_DATABASE_URL": database_url, **env}).start()


def send(gateway: GatewayProcess, upstream, count: int, prefix: str) -> None:
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    statuses = fire(f"{gateway.v1}/chat/completions", headers, count, 20, prefix=prefix)
    assert statuses.count(200) == count  # served throughout, store or no store


def test_records_spool_during_an_outage_and_arrive_exactly_once(tmp_path, upstream, pg_url, proxied):
    proxy, url = proxied
    gateway = start(tmp_path, url)
    try:
        send(gateway, upstream, 200, "before")
        until(lambda: count_rows(pg_url) == 200, what="the first rows")
        proxy.cut()
        send(gateway, upstream, 300, "during")
        until(lambda: metric(gateway, "sluicegate_log_records_spooled_total") >= 300, what="spooling")
        assert metric(gateway, "sluicegate_log_store_up") == 0
        assert list((tmp_path / "data" / "spool").glob("*.jsonl"))  # on local disk meanwhile
        assert count_rows(pg_url) == 200
        proxy.restore()
        send(gateway, upstream, 100, "after")
        until(lambda: count_rows(pg_url) >= 600, what="the replay")
        time.sleep(0.5)
        assert count_rows(pg_url) == 600
        for prefix, expected in (("before", 200), ("during", 300), ("after", 100)):
            assert count_rows(pg_url, f"trace_id LIKE '{prefix}-%'") == expected
        assert count_rows(pg_url, "trace_id IN (SELECT trace_id FROM request_logs GROUP BY trace_id "
                                  "HAVING count(*) > 1)") == 0
        assert metric(gateway, "sluicegate_log_records_replayed_total") >= 300
        assert metric(gateway, "sluicegate_log_store_up") == 1
        until(lambda: not list((tmp_path / "data" / "spool").glob("*.jsonl")), what="the spool to empty")
    finally:
        gateway.stop()
    log = gateway.log()
    assert "request log store unreachable" in log and "reachable again" in log
    assert "dropped" not in log


def test_past_the_spool_bound_records_are_dropped_counted_and_warned(tmp_path, upstream, pg_url, proxied):
    proxy, url = proxied
    gateway = start(tmp_path, url, SLUICEGATE_LOG_SPOOL_MAX_BYTES="40000")
    try:
        send(gateway, upstream, 20, "before")
        until(lambda: count_rows(pg_url) == 20, what="the first rows")
        proxy.cut()
        send(gateway, upstream, 200, "during")
        until(lambda: metric(gateway, "sluicegate_log_records_spooled_total")
              + metric(gateway, "sluicegate_log_records_dropped_total", reason="spool_full") >= 200,
              what="spool or drop")
        spooled = metric(gateway, "sluicegate_log_records_spooled_total")
        dropped = metric(gateway, "sluicegate_log_records_dropped_total", reason="spool_full")
        assert 0 < spooled < 200 and spooled + dropped == 200
        assert metric(gateway, "sluicegate_log_spool_bytes") <= 40000
        proxy.restore()
        until(lambda: count_rows(pg_url) == 20 + spooled, what="the replay")
    finally:
        gateway.stop()
    assert "request log records dropped so far" in gateway.log() and "spool_full" in gateway.log()


def test_an_admin_write_while_postgres_is_unreachable_is_a_503(tmp_path, upstream, pg_url, proxied):
    proxy, url = proxied
    gateway = start(tmp_path, url)
    try:
        proxy.cut()
        response = httpx.post(f"{gateway.url}/admin/api/providers", timeout=60,
                              headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                              json={"slug": "while-down", "spec": "openai", "custom_host": upstream.v1})
        assert response.status_code == 503, response.text  # the operator's problem, said as such: not a 500
        assert "database" in response.json()["message"]
    finally:
        gateway.stop()
