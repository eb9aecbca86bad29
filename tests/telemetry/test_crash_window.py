"""kill -9 loses at most the records of the durability window, and a cold start no more than a warm one.

Requests are sent at a steady pace, each answer's time noted; the gateway is killed with SIGKILL right
after the last answer, then restarted (which replays any spool) and stopped. Every record answered more
than WINDOW_S before the kill must be in the store: the bound docs/observability.md states (a batch waits
at most 100 ms to fill, then takes a few tens of ms to commit; the rest is slack for a loaded machine).
"""

from __future__ import annotations

import signal
import sqlite3
import time

import httpx

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

WINDOW_S = 1.0  # the documented durability window, with its margin
PACE_S = 0.02
COUNT = 120  # about 2.5 s of requests


def send_and_kill(gateway: GatewayProcess, upstream, prefix: str) -> dict[str, float]:
    """Trace id → seconds between its answer and the kill."""
    answered: dict[str, float] = {}
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(timeout=30) as client:
        for i in range(COUNT):
            trace = f"{prefix}-{i}"
            response = client.post(f"{gateway.v1}/chat/completions", json=body,
                                   headers={**headers, "x-portkey-trace-id": trace})
            assert response.status_code == 200
            answered[trace] = time.monotonic()
            time.sleep(PACE_S)
    gateway.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    gateway.proc.wait(10)
    return {trace: killed - at for trace, at in answered.items()}


def stored_after_restart(gateway: GatewayProcess, prefix: str) -> set[str]:
    restarted = GatewayProcess(gateway.data_dir, env=gateway.env).start()
    time.sleep(1.0)  # a spool left by the killed process is replayed at start
    restarted.stop()
    with sqlite3.connect(gateway.data_dir / "sluicegate.db") as conn:
        rows = conn.execute("SELECT trace_id FROM request_logs WHERE trace_id LIKE ?", (f"{prefix}-%",))
        return {trace for (trace,) in rows}


def assert_within_window(ages: dict[str, float], stored: set[str]) -> None:
    lost = {trace: round(age, 3) for trace, age in ages.items() if trace not in stored}
    assert not {t: a for t, a in lost.items() if a > WINDOW_S}, f"lost beyond the window: {lost}"
    assert stored <= set(ages)


def test_kill_9_when_warm_loses_only_the_window(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": []},
               headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
    time.sleep(1.0)  # warm: the writer has written
    ages = send_and_kill(gateway, upstream, "warm")
    assert_within_window(ages, stored_after_restart(gateway, "warm"))


def test_kill_9_right_after_a_cold_start_loses_no_more_than_warm(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    ages = send_and_kill(gateway, upstream, "cold")  # the first request right after the health check
    assert_within_window(ages, stored_after_restart(gateway, "cold"))
