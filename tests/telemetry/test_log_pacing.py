"""A request log that falls behind slows the intake instead of losing records (telemetry/sink.py, pacing).

A real gateway on SQLite with a small queue; the test holds the database's write lock for a second while
ten clients send requests, so the log cannot write and its queue fills. Without pacing the queue overflowed
and records were dropped; with it, new requests wait for the log, and every request is answered and logged.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.gateway import GatewayProcess

from .load import count_rows
from .test_outage import metric, until

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
REQUESTS, CLIENTS = 120, 10
LOCK_S = 1.0  # under the pace's bound (2 s) and the store's busy timeout (5 s): the write waits, then succeeds


def test_a_log_that_cannot_write_for_a_moment_holds_new_requests_and_loses_none(tmp_path, upstream):
    # A queue of 40 records, paced at 10 (two batches of 5): ten clients overflow it in well under the second.
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_LOG_QUEUE_MAX": "40",
                                                     "SLUICEGATE_LOG_BATCH_MAX": "5"}).start()
    database = tmp_path / "data" / "sluicegate.db"
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    try:
        with httpx.Client(timeout=30) as client:
            assert client.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers).status_code == 200
        until(lambda: count_rows(database) == 1, what="the first row")
        lock = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        lock.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(LOCK_S, lambda: lock.execute("ROLLBACK"))
        release.start()

        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        with httpx.Client(timeout=30, limits=limits) as client:  # one client: making one takes ~50 ms

            def send(_: int) -> int:
                return client.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers).status_code

            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(send, range(REQUESTS)))
            took = time.monotonic() - started
        release.join()
        lock.close()
        assert statuses == [200] * REQUESTS
        assert metric(gateway, "sluicegate_log_records_dropped_total", reason="queue_full") == 0
        until(lambda: count_rows(database) == REQUESTS + 1, what="every request's row")
        assert metric(gateway, "sluicegate_log_paced_requests_total") >= 1
        assert metric(gateway, "sluicegate_log_paced_seconds_total") > 0
        assert metric(gateway, "sluicegate_log_records_spooled_total") == 0  # the store only waited
        assert took >= LOCK_S * 0.8  # the requests did wait for the log (all were sent while it was locked)
    finally:
        gateway.stop()
