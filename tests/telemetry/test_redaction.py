"""Secrets sent to the gateway never reach its store, its spool, its journal, /metrics or its own log.

Secrets travel in Authorization, in forwarded headers, in x-portkey-api-key, in a catalog provider's
headers, and come back from an upstream that echoes them; then every byte the gateway keeps is searched:
the SQLite files (database, WAL) or a pg_dump of the PostgreSQL database, and the journal a process killed
while its records waited for a locked store left behind.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.fakes.upstream import Reply, chat_chunks
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

CLIENT_KEY = "sk-client-secret-4b1d0c8e"
FORWARDED_KEY = "forwarded-api-key-77aa1e"
FORWARDED_ORG = "forwarded-org-secret-5c2f"
PORTKEY_KEY = "portkey-api-key-91fe3a"
CATALOG_KEY = "catalog-secret-token-6d4e"
CONFIG_KEY = "config-inline-key-3e9b"
SECRETS = [CLIENT_KEY, FORWARDED_KEY, FORWARDED_ORG, PORTKEY_KEY, CATALOG_KEY, CONFIG_KEY, ADMIN_TOKEN]


def send_everything(gateway: GatewayProcess, upstream, api: LogApi | None,
                    before_requests: Callable[[], object] | None = None) -> list[str]:
    """Every way a secret can travel; with ``api``, waits for the records and checks the echo and /metrics."""
    created = httpx.post(
        f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        json={"slug": "private-llm", "spec": "openai", "custom_host": upstream.v1,
              "headers": {"Authorization": f"Bearer {CATALOG_KEY}"}, "models": ["llama"]},
    )
    assert created.status_code == 201, created.text
    if before_requests is not None:
        before_requests()
    headers = {
        "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
        "authorization": f"Bearer {CLIENT_KEY}", "x-api-key": FORWARDED_KEY, "x-org-id": FORWARDED_ORG,
        "x-portkey-forward-headers": "x-api-key, x-org-id", "x-portkey-api-key": PORTKEY_KEY,
        "cookie": f"session={CLIENT_KEY}",
    }
    traces = [new_trace() for _ in range(8)]
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    # An upstream that echoes the credentials it received, in a success, an error and a stream.
    upstream.push(
        Reply(json={"model": "m", "note": f"you sent {CLIENT_KEY} and {FORWARDED_KEY}",
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        Reply(status=401, json={"error": {"message": f"Incorrect API key provided: {CLIENT_KEY} ({FORWARDED_ORG})"}}),
        Reply(stream=chat_chunks(f"token {CLIENT_KEY} org {FORWARDED_ORG}")),
    )
    # A client that sends its key where an identifier goes (tracing headers) has it scrubbed there too.
    httpx.post(f"{gateway.v1}/chat/completions", json=body, headers={
        **headers, "x-portkey-trace-id": traces[0], "x-portkey-span-name": f"span {CLIENT_KEY}",
        "x-portkey-span-id": FORWARDED_KEY, "x-portkey-parent-span-id": FORWARDED_ORG,
        "traceparent": f"00-{FORWARDED_KEY}-x-01"})
    httpx.post(f"{gateway.v1}/chat/completions", json=body, headers={**headers, "x-portkey-trace-id": traces[1]})
    httpx.post(f"{gateway.v1}/chat/completions", json={**body, "stream": True},
               headers={**headers, "x-portkey-trace-id": traces[2]})
    httpx.get(f"{gateway.v1}/models?key={CLIENT_KEY}", headers={**headers, "x-portkey-trace-id": traces[3]})
    httpx.post(f"{gateway.v1}/chat/completions", json=body, headers={**headers, "x-portkey-trace-id": CLIENT_KEY})
    # A passthrough path is the client's text too: an id that is a credential is scrubbed from the route.
    httpx.get(f"{gateway.v1}/files/{CLIENT_KEY}?key={CLIENT_KEY}", headers={**headers, "x-portkey-trace-id": traces[6]})
    httpx.get(f"{gateway.v1}/files/{FORWARDED_ORG}/content", headers={**headers, "x-portkey-trace-id": traces[7]})
    # Through the catalog provider (its stored credential) and an inline config (its api_key), echoed back.
    upstream.push(Reply(status=401, json={"error": {"message": f"bad token {CATALOG_KEY}"}}),
                  Reply(json={"model": "m", "note": f"key {CONFIG_KEY}"}))
    httpx.post(f"{gateway.v1}/chat/completions", json={**body, "model": "@private-llm/llama"},
               headers={"x-portkey-trace-id": traces[4]})
    config = f'{{"provider": "openai", "api_key": "{CONFIG_KEY}", "custom_host": "{upstream.v1}"}}'
    httpx.post(f"{gateway.v1}/chat/completions", json=body,
               headers={"x-portkey-config": config, "x-portkey-trace-id": traces[5]})
    assert upstream.received[-2].headers["authorization"] == f"Bearer {CATALOG_KEY}"
    assert upstream.received[-1].headers["authorization"] == f"Bearer {CONFIG_KEY}"
    if api is None:
        return traces
    for trace in traces:
        api.wait(trace_id=trace)
    echoed = api.one(traces[0])
    assert "[REDACTED]" in echoed["response_body"]  # the echo was stored, without the secret
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert not [s for s in SECRETS if s in metrics]
    return traces


def leaked(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


def test_sqlite_files_hold_no_secret(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        send_everything(gateway, upstream, LogApi(gateway.url))
    finally:
        gateway.stop()
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file() and p.name != "gateway.log"]
    assert any(p.name == "sluicegate.db" for p in files)
    for path in files:
        assert not leaked(path.read_bytes()), path
    assert not leaked(gateway.log().encode())


def test_a_journal_left_by_kill_9_holds_no_secret(tmp_path, upstream):
    data = tmp_path / "data"
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    lock = sqlite3.connect(data / "sluicegate.db", isolation_level=None, timeout=30)
    try:
        # Another process holds the write lock: the records wait in the journal (the store's busy timeout is
        # 5 s, far longer than the requests take).
        traces = send_everything(gateway, upstream, None, lambda: lock.execute("BEGIN EXCLUSIVE"))
        journal = b"".join(p.read_bytes() for p in (data / "journal").glob("*.jsonl"))
        gateway.proc.send_signal(signal.SIGKILL)
        gateway.proc.wait(10)
    finally:
        lock.close()
    assert all(trace.encode() in journal for trace in traces)  # they were there to be searched
    assert b"[REDACTED]" in journal  # with the echoes, scrubbed
    files = [p for p in data.rglob("*") if p.is_file() and p.name != "gateway.log"]
    assert any(p.parent.name == "journal" for p in files)
    for path in files:
        assert not leaked(path.read_bytes()), path


@pytest.mark.postgres
def test_a_pg_dump_holds_no_secret(tmp_path, upstream, pg_url):
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_DATABASE_URL": pg_url}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        send_everything(gateway, upstream, LogApi(gateway.url))
    finally:
        gateway.stop()
    url = make_url(pg_url)
    dump = subprocess.run(
        ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
         "--data-only", url.database],
        check=True, capture_output=True,
    ).stdout
    assert b"request_logs" in dump and b"provider_headers" in dump
    assert not leaked(dump)
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file() and path.name != "gateway.log":
            assert not leaked(path.read_bytes()), path
    assert not leaked(gateway.log().encode())
