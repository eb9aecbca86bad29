"""The database files hold prompts and answers: 0600, in a 0700 data dir, like the master key and spool.

The data dir is made the way a user (or a deployment script) makes it, with the default umask (0755);
the modes are checked after start, and again after writes have created the WAL and its index.
"""

from __future__ import annotations

import os
import stat

import httpx

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_and_data_dir_are_private(tmp_path, upstream):
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        data.mkdir(mode=0o755)
    finally:
        os.umask(old)
    assert mode(data) == 0o755
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        files = [data / "sluicegate.db", data / "sluicegate.db-wal", data / "sluicegate.db-shm"]
        assert mode(data) == 0o700
        assert {f.name: mode(f) for f in files if f.exists()} == {f.name: 0o600 for f in files if f.exists()}
        trace = new_trace()
        created = httpx.post(f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"slug": "modes", "spec": "openai", "custom_host": upstream.v1})
        assert created.status_code == 201, created.text
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{gateway.v1}/chat/completions", json=body,
                            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
                                     "x-portkey-trace-id": trace})
        assert answer.status_code == 200
        LogApi(gateway.url).wait(trace_id=trace)
        assert all(f.exists() for f in files)  # WAL mode: the writes created both
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(data) == 0o700
    finally:
        gateway.stop()
