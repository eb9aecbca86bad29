"""A dashboard sign-in through one replica holds on every replica (behind round-robin each call may land on
another one), a CSRF-checked change through a second replica works, and a sign-out through a third ends the
session everywhere; a replica restarted keeps it. A revoked key's session ends on every replica."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.logapi import ADMIN_TOKEN
from tests.replicas import ADMIN, Replicas

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Replicas]:
    group = Replicas(tmp_path, pg_url).start()
    yield group
    group.stop()


def api(replicas: Replicas, i: int) -> str:
    return f"{replicas.gateways[i].url}/dashboard/api"


def test_a_sign_in_on_one_replica_holds_on_all_and_a_sign_out_ends_it_everywhere(replicas: Replicas) -> None:
    with httpx.Client(timeout=30, trust_env=False) as client:
        signed = client.post(f"{api(replicas, 0)}/session", json={"token": ADMIN_TOKEN})
        assert signed.status_code == 200, signed.text
        csrf = signed.json()["csrf_token"]
        for i in range(3):  # the cookie (scoped to the host, 127.0.0.1) goes to every replica
            who = client.get(f"{api(replicas, i)}/session")
            assert who.status_code == 200, (i, who.text)
            assert who.json()["csrf_token"] == csrf and who.json()["principal"]["name"] == "admin"
        made = client.post(f"{api(replicas, 1)}/configs", headers={"X-CSRF-Token": csrf},
                           json={"id": "made-on-r1", "config": {"provider": "openai"}})
        assert made.status_code == 201, made.text
        replicas.gateways[0].stop()
        replicas.gateways[0].start(timeout=60)
        assert client.get(f"{api(replicas, 0)}/session").status_code == 200  # a restart signs nobody out
        assert client.delete(f"{api(replicas, 2)}/session", headers={"X-CSRF-Token": csrf}).status_code == 200
        cookie = signed.cookies["sg_dashboard"]
        for i in range(3):
            after = httpx.get(f"{api(replicas, i)}/session", cookies={"sg_dashboard": cookie}, trust_env=False)
            assert after.status_code == 401, (i, after.text)


def test_a_key_revoked_on_one_replica_ends_its_session_on_every_replica(replicas: Replicas) -> None:
    with httpx.Client(timeout=30, trust_env=False) as client:
        made = client.post(f"{replicas.gateways[0].v1}/api-keys/organisation/service", headers=ADMIN,
                           json={"name": "viewer", "scopes": ["logs.list"]})
        assert made.status_code == 200, made.text
        for _ in range(100):  # the new key reaches replica 1's snapshot within a second
            signed = client.post(f"{api(replicas, 1)}/session", json={"token": made.json()["key"]})
            if signed.status_code == 200:
                break
            time.sleep(0.02)
        assert signed.status_code == 200, signed.text
        assert client.get(f"{api(replicas, 2)}/session").status_code == 200
        gone = httpx.delete(f"{replicas.gateways[2].v1}/api-keys/{made.json()['id']}", headers=ADMIN, trust_env=False)
        assert gone.status_code == 200, gone.text
        for i in range(3):
            for _ in range(100):  # the revocation reaches every replica's snapshot within a second
                answer = client.get(f"{api(replicas, i)}/session")
                if answer.status_code == 401:
                    break
                time.sleep(0.02)
            assert answer.status_code == 401, (i, answer.text)
            # the first replica to see the revocation says so and ends the session in the store for all
            expected = "revoked" if i == 0 else "Not signed in, or the session ended"
            assert expected in answer.json()["message"], (i, answer.text)
