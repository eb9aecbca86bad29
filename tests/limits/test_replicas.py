"""Three replicas on PostgreSQL + Redis (a redis-server of the test's own, on a free loopback port):
exact rate limits under 200 concurrent clients, a token budget that holds under concurrency and then
refuses on every replica, reservations of a killed replica expiring, and Redis stopped mid-load."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess
from tests.limits.test_gateway_limits import ADMIN, chat, headers, make_key
from tests.logapi import ADMIN_TOKEN

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]  # 3 processes and 2 000 requests on 2 cores
TTL_S = 3


class Replicas:
    def __init__(self, root: Path, pg_url: str, redis_url: str, **extra: str) -> None:
        hash_key = base64.b64encode(os.urandom(32)).decode()
        env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_DATABASE_URL": pg_url,
               "SLUICEGATE_REDIS_URL": redis_url, "SLUICEGATE_API_KEY_HASH_KEY": hash_key,
               "SLUICEGATE_LIMITS_RESERVATION_TTL": str(TTL_S), **extra}
        self.gateways = [GatewayProcess(root / f"r{i}", env=env) for i in range(3)]

    def start(self) -> Replicas:
        for gateway in self.gateways:
            gateway.start(timeout=60)
        return self

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()

    def url(self, i: int) -> str:
        return f"{self.gateways[i % 3].v1}/chat/completions"


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, private_redis) -> Iterator[Replicas]:
    group = Replicas(tmp_path, pg_url, private_redis.url).start()
    yield group
    group.stop()


async def spread(group: Replicas, head: dict[str, str], count: int, body=None) -> list[httpx.Response]:
    """``count`` clients at once, spread round-robin over the replicas (bounded: one request each)."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return list(await asyncio.gather(*(client.post(group.url(i), headers=head, json=body or chat())
                                           for i in range(count))))


def test_200_clients_on_3_replicas_against_100_rpm_admit_exactly_100_ten_runs_out_of_ten(
        replicas: Replicas, upstream) -> None:
    for run in range(10):
        _, secret = make_key(replicas.gateways[run % 3], rate_limits=[{"type": "requests", "unit": "rpm",
                                                                         "value": 100}])
        time.sleep(1.2)  # the other replicas see the new key (and its limits) within a second
        started = time.monotonic()
        answers = asyncio.run(spread(replicas, headers(secret, upstream), 200))
        statuses = [a.status_code for a in answers]
        print(f"run {run + 1}/10: {statuses.count(200)} admitted, {statuses.count(429)} refused (429) "
              f"in {time.monotonic() - started:.2f} s")
        assert statuses.count(200) == 100 and statuses.count(429) == 100, f"run {run}: {sorted(set(statuses))}"
        assert all(1 <= int(a.headers["Retry-After"]) <= 60 for a in answers if a.status_code == 429)


def test_a_token_budget_holds_under_concurrency_then_412_on_every_replica(replicas: Replicas, upstream) -> None:
    key_id, secret = make_key(replicas.gateways[0], usage_limits={"type": "tokens", "credit_limit": 200})
    time.sleep(1.2)
    head = headers(secret, upstream)
    admitted = 0
    for _ in range(10):  # bounded: bursts of 30 until the budget refuses everything
        answers = asyncio.run(spread(replicas, head, 30))
        admitted += sum(a.status_code == 200 for a in answers)
        assert {a.status_code for a in answers} <= {200, 412}
        time.sleep(0.5)  # settlement runs in each replica's log task, just after the answer
        if all(a.status_code == 412 for a in answers):
            break
    # Each request reserves 11 tokens (1 prompt + 10 max_tokens) and uses 8: usage never passes the budget.
    print(f"token budget 200: {admitted} requests admitted, {8 * admitted} tokens used")
    assert 8 * admitted <= 200 and 8 * admitted > 200 - 11 - 8
    for i in range(3):
        refused = httpx.post(replicas.url(i), headers=head, json=chat(), timeout=30)
        assert refused.status_code == 412 and "Usage limit exhausted" in refused.json()["message"]
    used = httpx.get(f"{replicas.gateways[2].url}/admin/api/limits/key/{key_id}", headers=ADMIN, timeout=30)
    assert used.json()["used"] == 8 * admitted


def test_reservations_of_a_killed_replica_expire_within_their_ttl(replicas: Replicas, upstream) -> None:
    _, secret = make_key(replicas.gateways[0], usage_limits={"type": "tokens", "credit_limit": 30})
    time.sleep(1.2)
    head = headers(secret, upstream)
    upstream.push(Reply(delay=30), Reply(delay=30))

    async def in_flight_then_kill() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            pending = [asyncio.ensure_future(client.post(replicas.url(0), headers=head, json=chat()))
                       for _ in range(2)]
            deadline = time.monotonic() + 20
            while len(upstream.received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            replicas.gateways[0].proc.send_signal(signal.SIGKILL)  # 22 tokens reserved, never settled
            replicas.gateways[0].proc.wait(10)
            results = await asyncio.gather(*pending, return_exceptions=True)
            return [r.status_code if isinstance(r, httpx.Response) else 0 for r in results]

    assert asyncio.run(in_flight_then_kill()) == [0, 0]
    killed_at = time.monotonic()
    assert httpx.post(replicas.url(1), headers=head, json=chat(), timeout=30).status_code == 412  # 22 + 11 > 30
    deadline = killed_at + TTL_S + 10
    while time.monotonic() < deadline:
        answer = httpx.post(replicas.url(2), headers=head, json=chat(), timeout=30)
        if answer.status_code == 200:
            break
        assert answer.status_code == 412
        time.sleep(0.2)
    assert answer.status_code == 200
    print(f"kill -9 with 22 tokens reserved: released {time.monotonic() - killed_at:.2f} s after (TTL {TTL_S} s)")
    assert time.monotonic() - killed_at >= TTL_S - 1  # released by expiry, not earlier


def test_redis_stopped_mid_load_fails_closed_with_503_then_limits_resume(
        tmp_path: Path, pg_url: str, private_redis, upstream) -> None:
    group = Replicas(tmp_path, pg_url, private_redis.url).start()
    fail_open = GatewayProcess(tmp_path / "open", env={**group.gateways[0].env,
                                                       "SLUICEGATE_LIMITS_FAIL_OPEN": "1"}).start(timeout=60)
    try:
        _, secret = make_key(group.gateways[0], rate_limits=[{"type": "requests", "unit": "rpm", "value": 50}])
        time.sleep(1.2)
        head = headers(secret, upstream)
        assert {a.status_code for a in asyncio.run(spread(group, head, 20))} == {200}
        private_redis.stop()
        started = time.monotonic()
        answers = asyncio.run(spread(group, head, 30))
        print(f"redis stopped: 30 requests answered {sorted({a.status_code for a in answers})} "
              f"in {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 20  # no hang
        assert {a.status_code for a in answers} == {503}
        assert all("limits store is unreachable" in a.json()["message"] for a in answers)
        assert httpx.post(f"{fail_open.v1}/chat/completions", headers=head, json=chat(),
                          timeout=30).status_code == 200  # the operator chose to fail open
        metrics = httpx.get(f"{group.gateways[0].url}/metrics", timeout=30).text
        assert 'sluicegate_limit_store_up{backend="redis"} 0.0' in metrics
        assert 'sluicegate_limit_refusals_total{reason="store_unavailable"}' in metrics
        open_metrics = httpx.get(f"{fail_open.url}/metrics", timeout=30).text
        assert "sluicegate_limit_failed_open_total 1.0" in open_metrics
        private_redis.start()  # empty (no persistence): counting starts again, exactly
        answers = asyncio.run(spread(group, head, 60))
        assert sorted(a.status_code for a in answers) == [200] * 50 + [429] * 10
    finally:
        fail_open.stop()
        group.stop()
