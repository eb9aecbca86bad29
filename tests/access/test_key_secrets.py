"""A gateway API key's secret appears in its creation answer and nowhere else: not in any other response
(retrieve, list, CLI, logs API, errors), not in the gateway's log, not in the database (SQLite files or a
pg_dump of PostgreSQL), and never upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from portkey_ai import Portkey
from sqlalchemy.engine import make_url

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

NEVER_STORED = "sg-never-stored-but-sent-0123456789abcdefghijkl"


def _cli(data_dir: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-m", "sluicegate", *args, "--data-dir", str(data_dir), "--json"],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout, result.stderr


def exercise(gateway: GatewayProcess, upstream, env: dict[str, str]) -> tuple[list[str], str]:
    """Make keys (SDK and CLI), use them every way, refuse some; return the secrets and all text seen."""
    admin = Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)
    httpx.post(f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
               json={"slug": "llm", "spec": "openai", "custom_host": upstream.v1}).raise_for_status()
    made = admin.api_keys.create(type="workspace", sub_type="service", name="sdk", workspace_id="default",
                                 scopes=["completions.write", "logs.list"])
    cli_key = json.loads(_cli(gateway.data_dir, env, "keys", "create", "--name", "cli")[0])["key"]
    revoked = admin.api_keys.create(type="workspace", sub_type="user", name="gone", workspace_id="default")
    admin.api_keys.delete(id=revoked.id)
    secrets = [made.key, cli_key, revoked.key, NEVER_STORED]
    seen: list[str] = []
    trace = new_trace()
    for key in (made.key, cli_key):
        answer = Portkey(api_key=key, base_url=gateway.v1, trace_id=trace).chat.completions.create(
            model="@llm/m", messages=[{"role": "user", "content": "hi"}])
        seen.append(answer.model_dump_json())
    seen.append(openai.OpenAI(api_key=made.key, base_url=gateway.v1).chat.completions.create(
        model="@llm/m", messages=[{"role": "user", "content": "hi"}]).model_dump_json())
    for key, headers in ((revoked.key, {}), (NEVER_STORED, {}), (made.key, {"x-portkey-provider": "@nope"}),
                         (made.key, {"x-portkey-config": "not-a-config"})):
        response = httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": []},
                              headers={"x-portkey-api-key": key, **headers}, timeout=30)
        assert response.status_code >= 400
        seen.append(response.text)
    response = httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": [{"role": "user"}]},
                          headers={"authorization": f"Bearer {NEVER_STORED}", "x-portkey-provider": "@llm"}, timeout=30)
    assert response.status_code == 401
    seen.append(response.text)
    seen.append(str(admin.api_keys.list().model_dump()))
    seen.append(str(admin.api_keys.retrieve(id=made.id).model_dump()))
    for path in ("/admin/api/api-keys", f"/admin/api/api-keys/{made.id}", "/admin/api/audit-logs"):
        seen.append(httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).text)
    seen.extend(_cli(gateway.data_dir, env, "keys", "list"))
    seen.extend(_cli(gateway.data_dir, env, "audit", "list"))
    api = LogApi(gateway.url)
    api.wait(trace_id=trace, count=2)
    seen.append(json.dumps(api.logs()))
    seen.extend(api.get(f"/logs/{r['id']}").text for r in api.logs())  # each row in full, bodies included
    seen.extend(str(r.headers) + r.body.decode() for r in upstream.received)
    return secrets, "\n".join(seen)


def _leaked(secrets: list[str], blob: bytes) -> list[str]:
    return [s for s in secrets if s.encode() in blob]


def test_sqlite_files_log_and_responses_hold_no_key(tmp_path, upstream) -> None:
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        secrets, seen = exercise(gateway, upstream, env)
    finally:
        gateway.stop()
    assert not _leaked(secrets, seen.encode())
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.name == "sluicegate.db" for p in files)
    for path in files:  # the database, its WAL, the gateway's own log
        assert not _leaked(secrets, path.read_bytes()), path


@pytest.mark.postgres
def test_a_pg_dump_holds_no_key(tmp_path, upstream, pg_url) -> None:
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_DATABASE_URL": pg_url}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        secrets, seen = exercise(gateway, upstream, env)
    finally:
        gateway.stop()
    assert not _leaked(secrets, seen.encode())
    url = make_url(pg_url)
    dump = subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U",
                           url.username or "postgres", "--data-only", url.database],
                          check=True, capture_output=True).stdout
    assert b"api_keys" in dump and b"sg-" in dump  # the keys are there: as their prefixes and hashes
    assert not _leaked(secrets, dump)
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert not _leaked(secrets, path.read_bytes()), path
