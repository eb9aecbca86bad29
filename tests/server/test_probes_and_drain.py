"""/livez and /readyz, and the drain on SIGTERM, through a real gateway process.

Probes need no credential (even with SLUICEGATE_AUTH=required), say nothing secret, are left out of the
request log and the access log, and answer other methods with the gateway's 405 envelope. On SIGTERM
/readyz turns 503 at once while the process still serves for SLUICEGATE_DRAIN_DELAY, then it stops
accepting, lets a slow stream finish (within SLUICEGATE_DRAIN_TIMEOUT), writes its log record, and exits
0; a stream longer than the bound is cut at the bound and still logged.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import Reply, chat_chunks
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def start(tmp_path: Path, **env: str) -> GatewayProcess:
    return GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, **env}).start()


def test_probes_answer_without_credentials_and_stay_out_of_the_logs(tmp_path: Path, upstream) -> None:
    gateway = start(tmp_path, SLUICEGATE_AUTH="required", SLUICEGATE_ACCESS_LOG="1")
    try:
        live = httpx.get(f"{gateway.url}/livez", timeout=10)
        ready = httpx.get(f"{gateway.url}/readyz", timeout=10)
        assert (live.status_code, live.json()) == (200, {"status": "alive"})
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": {"store": "ok"}})
        assert httpx.get(f"{gateway.v1}/health", timeout=10).json() == {"status": "healthy"}  # unchanged
        unauthorised = httpx.post(f"{gateway.v1}/chat/completions", timeout=10,
                                  headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1},
                                  json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert unauthorised.status_code == 401  # the /v1 API does need a key here
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for path in ("/livez", "/readyz"):
                refused = httpx.request(method, f"{gateway.url}{path}", timeout=10)
                assert refused.status_code == 405, (method, path)
                assert refused.json()["status"] == "failure" and "Traceback" not in refused.text
        assert httpx.get(f"{gateway.url}/readyz/extra", timeout=10).status_code == 404
        assert httpx.get(f"{gateway.url}/readyz?verbose=1", timeout=10).status_code == 200  # a query is ignored
        records = LogApi(gateway.url).wait(1)  # the 401 only: no probe became a record
        assert records[0]["status"] == 401
    finally:
        gateway.stop()
    log = gateway.log()
    assert "GET /v1/health HTTP" in log and "GET /readyz/extra HTTP" in log  # the access log is on
    assert "GET /livez" not in log and "GET /readyz HTTP" not in log and "GET /readyz?" not in log
    assert ADMIN_TOKEN not in ready.text


def _stream_in_background(url: str, upstream, trace: str, lines: list[str], done: threading.Event,
                          ) -> threading.Thread:
    head = {"x-portkey-trace-id": trace, "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}

    def run() -> None:
        try:
            with httpx.stream("POST", url, timeout=60, headers=head,
                              json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                              ) as answer:
                lines.append(f"status {answer.status_code}")
                for line in answer.iter_lines():
                    if line:
                        lines.append(line)
        except httpx.HTTPError as exc:
            lines.append(f"error {type(exc).__name__}")
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _slow_stream(words: int, interval: float) -> Reply:
    return Reply(stream=chat_chunks(" ".join(f"w{i}" for i in range(words))), chunk_interval=interval)


def test_sigterm_unready_at_once_then_a_slow_stream_finishes_and_is_logged(tmp_path: Path, upstream) -> None:
    gateway = start(tmp_path, SLUICEGATE_DRAIN_DELAY="1.5", SLUICEGATE_DRAIN_TIMEOUT="20")
    upstream.push(_slow_stream(15, 0.2))  # about 3.6 s of stream
    trace, lines, done = new_trace(), [], threading.Event()
    url = f"{gateway.v1}/chat/completions"
    thread = _stream_in_background(url, upstream, trace, lines, done)
    head = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    deadline = time.monotonic() + 20
    while not any("w0" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("w0" in line for line in lines), lines
    gateway.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.2)
    ready = httpx.get(f"{gateway.url}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["status"] == "draining", ready.text
    assert httpx.get(f"{gateway.url}/livez", timeout=5).status_code == 200
    served = httpx.post(url, headers=head, timeout=10, json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert served.status_code == 200  # still serving during the delay: only the load balancer is told
    while time.monotonic() - signalled < 2.0:  # past the delay: no longer accepting
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.url}/livez", timeout=5)
    thread.join(30)
    assert done.is_set() and lines[0] == "status 200" and lines[-1] == "data: [DONE]", lines
    assert sum("w" in line and "content" in line for line in lines) == 15
    assert gateway.proc.wait(30) == 0
    restarted = start(tmp_path)  # the same SQLite store: the stream's record was written before exit
    try:
        record = LogApi(restarted.url).one(trace)
        assert record["status"] == 200
    finally:
        restarted.stop()


def test_a_stream_longer_than_the_drain_bound_is_cut_at_the_bound_and_logged(tmp_path: Path, upstream) -> None:
    gateway = start(tmp_path, SLUICEGATE_DRAIN_TIMEOUT="1")
    upstream.push(_slow_stream(100, 0.2))  # 20 s of stream
    trace, lines, done = new_trace(), [], threading.Event()
    thread = _stream_in_background(f"{gateway.v1}/chat/completions", upstream, trace, lines, done)
    deadline = time.monotonic() + 20
    while not any("w0" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    signalled = time.monotonic()
    gateway.proc.send_signal(signal.SIGTERM)
    assert gateway.proc.wait(30) == 0
    assert time.monotonic() - signalled < 8  # the bound (1 s) plus the log's drain and the exit, no hang
    thread.join(10)
    assert done.is_set() and "data: [DONE]" not in lines
    # Not a silent clean end (which SDKs take for a whole answer): the last event is an error naming the cut.
    assert lines[-1].startswith("data: {") and '"gateway_shutdown"' in lines[-1], lines[-3:]
    restarted = start(tmp_path)
    try:
        record = LogApi(restarted.url).one(trace)
        # The stream began as a 200; shutdown cut it, the client did not leave (it was logged a 499).
        assert (record["status"], record["error"]["type"]) == (200, "gateway_shutdown"), record
    finally:
        restarted.stop()


def test_a_request_unanswered_at_the_drain_bound_is_answered_503_and_logged(tmp_path: Path, upstream) -> None:
    gateway = start(tmp_path, SLUICEGATE_DRAIN_TIMEOUT="1")
    upstream.push(Reply(delay=20.0))  # far longer than the bound
    trace, answers = new_trace(), []
    head = {"x-portkey-trace-id": trace, "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}

    def ask() -> None:
        try:
            answers.append(httpx.post(f"{gateway.v1}/chat/completions", headers=head, timeout=30,
                                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        except httpx.HTTPError as exc:
            answers.append(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not upstream.received and time.monotonic() < deadline:  # the request is at the upstream
        time.sleep(0.02)
    gateway.proc.send_signal(signal.SIGTERM)
    assert gateway.proc.wait(30) == 0
    thread.join(10)
    answer = answers[0]
    # It was a closed connection with no answer; a 503 is what SDKs retry (elsewhere, or once restarted).
    assert isinstance(answer, httpx.Response) and answer.status_code == 503, answer
    assert answer.json()["message"].startswith("the gateway shut down before the response was complete")
    restarted = start(tmp_path)
    try:
        record = LogApi(restarted.url).one(trace)
        assert (record["status"], record["error"]["type"]) == (503, "gateway_shutdown"), record
    finally:
        restarted.stop()
