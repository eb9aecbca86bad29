"""`sluicegate serve` as an operator runs it: the banner, --workers N, and a graceful SIGTERM."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess


def _listening_pids(port: int) -> set[int]:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def test_banner_prints_the_url_and_a_working_curl(gateway):
    log = gateway.log()
    assert f"sluicegate listening on http://127.0.0.1:{gateway.port}" in log
    assert f"curl http://127.0.0.1:{gateway.port}/v1/chat/completions" in log


def test_workers_share_the_port(tmp_path, upstream):
    process = GatewayProcess(tmp_path, args=("--workers", "2")).start()
    try:
        deadline = time.monotonic() + 10
        while len(_listening_pids(process.port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = _listening_pids(process.port)
        assert len(pids) == 2 and process.proc.pid not in pids  # two workers, the supervisor only watches
        headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
        # No keep-alive: every request is a fresh connection, which the kernel spreads over both workers.
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for i in range(20):
                response = client.post(f"{process.v1}/chat/completions", headers=headers,
                                       json={"messages": [{"role": "user", "content": str(i)}]})
                assert response.json()["choices"][0]["message"]["content"] == f"echo: {i}"
    finally:
        assert process.stop() == 0
    assert _listening_pids(process.port) == set()  # SIGTERM reached both workers


def test_sigterm_lets_the_request_in_flight_finish(tmp_path, upstream):
    process = GatewayProcess(tmp_path).start()
    upstream.push(Reply(delay=1.0))
    result: dict = {}

    def call() -> None:
        result["response"] = httpx.post(
            f"{process.v1}/chat/completions", timeout=10,
            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1},
            json={"messages": [{"role": "user", "content": "slow"}]},
        )

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.4)  # the request is now waiting on the upstream
    assert process.stop(signal.SIGTERM) == 0
    thread.join(10)
    assert result["response"].status_code == 200
    assert result["response"].json()["choices"][0]["message"]["content"] == "echo: slow"


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_workers_must_be_positive(tmp_path, bad):
    proc = subprocess.run([sys.executable, "-m", "sluicegate", "serve", "--workers", bad],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "argument --workers: must be a whole number from 1 to 1024" in proc.stderr


def test_sigterm_drains_a_stalled_stream_within_the_bound_and_flushes_the_log(tmp_path, upstream):
    """A stream whose upstream stalls would hold shutdown for ever: SLUICEGATE_DRAIN_TIMEOUT bounds it, the
    stream is then cut, and its request-log row is still written before the process exits."""
    drain = 3.0
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_DRAIN_TIMEOUT": str(drain)}).start()
    first = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "tick"}}]}
    upstream.push(Reply(stream=[first, first, "[DONE]"], chunk_interval=60.0))  # stalls after one event
    trace = "drain-trace-0123"
    opened = threading.Event()

    def stream() -> None:
        headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
                   "x-portkey-trace-id": trace}
        body = {"stream": True, "messages": [{"role": "user", "content": "stall"}]}
        try:
            with httpx.stream("POST", f"{process.v1}/chat/completions", json=body, headers=headers,
                              timeout=90) as response:
                for _ in response.iter_bytes():
                    opened.set()
        except httpx.HTTPError:
            pass  # cut by the drain bound: expected

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    assert opened.wait(15)  # the first event arrived: the stream is in flight and now stalls
    started = time.monotonic()
    assert process.stop(signal.SIGTERM, timeout=60) == 0
    elapsed = time.monotonic() - started
    # Not cut before the bound; and after it only cancelling, flushing the log and exiting (aiohttp's own
    # shutdown would have waited twice the bound).
    assert drain * 0.9 <= elapsed < drain + 2.5, elapsed
    thread.join(10)
    with sqlite3.connect(tmp_path / "sluicegate.db") as db:
        rows = db.execute("SELECT count(*) FROM request_logs WHERE trace_id = ?", (trace,)).fetchone()
    assert rows == (1,)
