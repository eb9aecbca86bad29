"""`sluicegate serve` as an operator runs it: the banner, --workers N, and a graceful SIGTERM."""

from __future__ import annotations

import re
import signal
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
    assert proc.returncode == 2 and "--workers must be at least 1" in proc.stderr
