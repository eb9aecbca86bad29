"""The sink under load and at shutdown: every request becomes exactly one row.

5,000 requests at concurrency 50 against a real gateway process (SQLite, then PostgreSQL); 1,000 requests
and an immediate SIGTERM: the process drains its queue before it exits.
"""

from __future__ import annotations

import time

import pytest

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

from .load import count_rows, fire


def headers(upstream) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}


def wait_rows(database, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        rows = count_rows(database)
        if rows >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def start(tmp_path, pg_url=None) -> tuple[GatewayProcess, object]:
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    if pg_url:
        env["SLUICEGATE_DATABASE_URL"] = pg_url
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    return gateway, (pg_url or tmp_path / "data" / "sluicegate.db")


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def test_5000_requests_at_concurrency_50_become_5000_rows(tmp_path, upstream, dialect, request):
    pg_url = request.getfixturevalue("pg_url") if dialect == "pg" else None
    gateway, database = start(tmp_path, pg_url)
    try:
        statuses = fire(f"{gateway.v1}/chat/completions", headers(upstream), 5000, 50, prefix="load")
        assert statuses.count(200) == 5000
        assert wait_rows(database, 5000) == 5000
        time.sleep(0.3)
        assert count_rows(database) == 5000  # and not one more
        assert count_rows(database, "trace_id LIKE 'load-%'") == 5000
    finally:
        gateway.stop()
    assert "dropped" not in gateway.log()


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def test_sigterm_drains_the_queue_before_exit(tmp_path, upstream, dialect, request):
    pg_url = request.getfixturevalue("pg_url") if dialect == "pg" else None
    gateway, database = start(tmp_path, pg_url)
    statuses = fire(f"{gateway.v1}/chat/completions", headers(upstream), 1000, 50, prefix="term")
    assert gateway.stop() == 0  # SIGTERM right after the last answer
    assert statuses.count(200) == 1000
    assert count_rows(database) == 1000
    assert "dropped" not in gateway.log()
