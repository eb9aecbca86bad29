"""kill -9 loses no answered request's record: the write-ahead journal holds it until it is committed.

Requests are sent at a steady pace, then in a burst (every third one streamed), each answer noted; the
gateway is killed with SIGKILL as soon as the burst is answered (the sink commits every 20-100 ms, so the
burst's records are not committed yet: without the journal some were always missing), then restarted on the same data dir, which replays the journal the killed process left. Every request
answered before the kill must then be in the store exactly once, warm and right after a cold start; and once
the restarted gateway stops, neither a journal nor a spool segment is left behind.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import httpx

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

PACE_S = 0.02
COUNT = 120  # about 2.5 s of requests
BURST = 24
REPLAY_TIMEOUT_S = 20.0


def send_and_kill(gateway: GatewayProcess, upstream, prefix: str) -> set[str]:
    """The trace ids of the requests answered before the kill: paced ones, then a burst, and the kill as
    soon as the burst is answered (its records wait for the sink's next batch)."""
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}

    async def send(client: httpx.AsyncClient, i: int) -> str:
        trace = f"{prefix}-{i}"
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": i % 3 == 2}
        response = await client.post(f"{gateway.v1}/chat/completions", json=body,
                                     headers={**headers, "x-portkey-trace-id": trace})
        assert response.status_code == 200
        if body["stream"]:
            assert response.text.rstrip().endswith("data: [DONE]")  # the whole stream was read
        return trace

    async def run() -> set[str]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=BURST)) as client:
            answered = set()
            for i in range(COUNT):
                answered.add(await send(client, i))
                await asyncio.sleep(PACE_S)
            answered.update(await asyncio.gather(*(send(client, COUNT + i) for i in range(BURST))))
            gateway.proc.send_signal(signal.SIGKILL)
        return answered

    answered = asyncio.run(run())
    gateway.proc.wait(10)
    return answered


def stored(data_dir, prefix: str) -> dict[str, int]:
    with sqlite3.connect(data_dir / "sluicegate.db") as conn:
        rows = conn.execute("SELECT trace_id, count(*) FROM request_logs WHERE trace_id LIKE ? GROUP BY trace_id",
                            (f"{prefix}-%",))
        return dict(rows.fetchall())


def stored_after_restart(gateway: GatewayProcess, prefix: str, answered: set[str]) -> dict[str, int]:
    restarted = GatewayProcess(gateway.data_dir, env=gateway.env).start()
    try:
        deadline = time.monotonic() + REPLAY_TIMEOUT_S  # the journal left by the killed process is replayed
        while not answered <= stored(gateway.data_dir, prefix).keys() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert restarted.stop() == 0
    return stored(gateway.data_dir, prefix)


def assert_all_logged_once(gateway: GatewayProcess, answered: set[str], counts: dict[str, int]) -> None:
    missing = sorted(answered - counts.keys(), key=lambda trace: int(trace.rsplit("-", 1)[1]))
    assert not missing, f"{len(missing)} answered requests not logged: {missing}"
    assert counts.keys() == answered and set(counts.values()) == {1}
    left = [p.name for name in ("journal", "spool") for p in (gateway.data_dir / name).glob("*")]
    assert left == []


def test_kill_9_when_warm_loses_nothing_answered(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": []},
               headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
    time.sleep(1.0)  # warm: the writer has written
    answered = send_and_kill(gateway, upstream, "warm")
    assert_all_logged_once(gateway, answered, stored_after_restart(gateway, "warm", answered))


def test_kill_9_right_after_a_cold_start_loses_nothing_answered(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    answered = send_and_kill(gateway, upstream, "cold")  # the first request right after the health check
    assert_all_logged_once(gateway, answered, stored_after_restart(gateway, "cold", answered))
