"""The gateway's request log records tokens and latency for calls to a real model server.

llama.cpp's server sends no usage chunk at the end of a stream (even with stream_options.include_usage),
so for a stream the gateway has to estimate the tokens and say that they are estimated.
Skipped until request logs (`GET /admin/api/logs`) are merged (telemetry branch).

The log's layout belongs to the telemetry module; these tests look for the facts (a record with our
trace id, token counts, a latency, an "estimated" mark) wherever the record keeps them, so they do not
pin a schema that is not ours to define.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.e2e_real.capabilities import require_request_logs
from tests.e2e_real.clients import MODEL, SHORT, direct_headers, user
from tests.e2e_real.conftest import ADMIN_TOKEN

FIND_TIMEOUT_S = 10  # the log is written in batches, off the request path


def _walk(value, prefix=""):
    """Every (dotted key, leaf value) in a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _walk(inner, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _numbers(record: dict, word: str) -> list[float]:
    return [v for k, v in _walk(record) if word in k.lower() and isinstance(v, (int, float))
            and not isinstance(v, bool)]


def _find_record(gateway, trace_id: str) -> dict:
    deadline = time.monotonic() + FIND_TIMEOUT_S
    while time.monotonic() < deadline:
        response = httpx.get(f"{gateway.url}/admin/api/logs", params={"trace_id": trace_id}, timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        body = response.json()
        rows = body if isinstance(body, list) else next((v for v in body.values() if isinstance(v, list)), [])
        for row in rows:
            if trace_id in [v for _, v in _walk(row)]:
                return row
        time.sleep(0.2)
    raise AssertionError(f"no log record with trace id {trace_id} after {FIND_TIMEOUT_S}s")


@pytest.fixture(scope="session")  # session: asked before the model servers start, skips cheaply
def logs(gateway):
    require_request_logs(gateway, ADMIN_TOKEN)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_request_log_holds_tokens_and_latency(gateway, logs, smol, stream):
    trace_id = f"realllm-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{gateway.v1}/chat/completions", timeout=60,
        headers={**direct_headers(smol.v1), "x-portkey-trace-id": trace_id},
        json={"model": MODEL, "messages": user("Say something short."), "max_tokens": SHORT, "stream": stream})
    assert response.status_code == 200
    record = _find_record(gateway, trace_id)
    assert any(n > 0 for n in _numbers(record, "prompt_tokens")), record
    assert any(n > 0 for n in _numbers(record, "completion_tokens")), record
    assert any(n > 0 for n in _numbers(record, "latency")), record
    estimated = [v for k, v in _walk(record) if "estimat" in k.lower()]
    if stream:
        assert True in estimated, f"stream tokens should be marked estimated (llama.cpp sends no usage): {record}"
    else:
        assert True not in estimated, f"the upstream reported usage, nothing to estimate: {record}"
