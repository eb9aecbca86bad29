"""The store's health as /metrics and the operator log tell it: a locked database, a deleted one, a full disk.

Each case runs a real gateway on SQLite, creates the fault from the test, sends requests throughout, and
checks what the gateway says (the store_up gauge, drop counters, its log) and what it does (spool, 503).
"""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

from .load import count_rows
from .test_outage import metric, until

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def chat(gateway: GatewayProcess, upstream) -> int:
    return httpx.post(f"{gateway.v1}/chat/completions", json=BODY, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}).status_code


def test_store_up_reads_0_while_the_database_is_locked(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    database = tmp_path / "data" / "sluicegate.db"
    sent = 0
    try:
        assert chat(gateway, upstream) == 200
        sent += 1
        until(lambda: count_rows(database) == 1, what="the first row")
        assert metric(gateway, "sluicegate_log_store_up") == 1
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock (readers still read: WAL)
        locked_at = time.monotonic()
        samples = []
        while time.monotonic() - locked_at < 12:  # two and more busy timeouts (5 s each)
            assert chat(gateway, upstream) == 200  # served all the same
            sent += 1
            if time.monotonic() - locked_at > 3:  # past the stall bound of the first write
                samples.append(metric(gateway, "sluicegate_log_store_up"))
            time.sleep(0.2)
        lock.execute("ROLLBACK")
        lock.close()
        assert samples and set(samples) == {0.0}, samples
        until(lambda: metric(gateway, "sluicegate_log_store_up") == 1, timeout=40, what="store_up back to 1")
        until(lambda: count_rows(database) == sent, timeout=40, what="every row, spooled ones replayed")
    finally:
        gateway.stop()
    assert count_rows(database) == sent
