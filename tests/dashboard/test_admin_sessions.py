"""A dashboard session opened with the admin token ends with that token, through real processes.

It did not: the guard renewed an admin session as "the admin" without asking whether the token it signed in
with still held, so after ``sluicegate admin-token reset`` (the remedy for a leaked token) or a new
SLUICEGATE_ADMIN_TOKEN, whoever held the old token kept full admin power for the session's 8 hours, and could
mint keys that never expire.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway import GatewayProcess, loopback_only_env

GONE = "The admin token this session signed in with was reset or replaced: sign in again"


def _reset(data_dir: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "sluicegate", "admin-token", "reset", "--json"], timeout=60,
                          capture_output=True, text=True,
                          env={**os.environ, **loopback_only_env(), "SLUICEGATE_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["admin_token"]


def _signed_in(gateway: GatewayProcess, token: str) -> httpx.Client:
    client = httpx.Client(base_url=f"{gateway.url}/dashboard/api", timeout=10, trust_env=False)
    answer = client.post("/session", json={"token": token}, headers={"Origin": gateway.url})
    assert answer.status_code == 200, answer.text
    assert client.get("/logs").status_code == 200
    return client


def test_a_reset_ends_the_sessions_of_the_old_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = _reset(data)
    gateway = GatewayProcess(data).start()
    try:
        session = _signed_in(gateway, old)
        new = _reset(data)  # the gateway runs on: the next use of the session asks the store
        refused = session.get("/logs")
        assert refused.status_code == 401 and refused.json()["message"] == GONE, refused.text
        again = session.get("/session")
        assert again.status_code == 401 and again.json()["message"].startswith("Not signed in")  # ended
        session.close()
        _signed_in(gateway, new).close()
    finally:
        gateway.stop()


def test_a_new_admin_token_in_the_environment_ends_the_sessions_of_the_old(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": "first-admin-token-0123456789"})
    first.start()
    try:
        session = _signed_in(first, "first-admin-token-0123456789")
    finally:
        first.stop()
    second = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": "second-admin-token-0123456789"}, port=first.port)
    second.start()
    try:
        refused = session.get("/logs")
        assert refused.status_code == 401 and refused.json()["message"] == GONE, refused.text
    finally:
        session.close()
        second.stop()
