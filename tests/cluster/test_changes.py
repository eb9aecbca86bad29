"""Three replicas on one PostgreSQL: a provider, a saved config, an API key created, changed or revoked
through one replica is in force on all three within one second (20 trials each, latency measured from the
write's answer). The safety-net poll is left at its PostgreSQL default (5 s): what is measured here is the
LISTEN/NOTIFY path. The distribution is printed (``-s``) for docs/replicas.md."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.replicas import ADMIN, Replicas

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]
TRIALS = 20
BOUND_S = 1.0


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Replicas]:
    group = Replicas(tmp_path, pg_url).start()
    yield group
    group.stop()


def chat(model: str = "m1") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def seen_by_all(group: Replicas, client: httpx.AsyncClient, ask: Callable[[int], object],
                      seen: Callable[[httpx.Response], bool]) -> list[float]:
    """Seconds until each replica answers ``seen`` (polled every 10 ms, for at most 3 s each)."""
    started = time.monotonic()

    async def one(i: int) -> float:
        while time.monotonic() - started < 3:
            if seen(await ask(i)):  # type: ignore[misc]
                return time.monotonic() - started
            await asyncio.sleep(0.01)
        return float("inf")

    return list(await asyncio.gather(*(one(i) for i in range(len(group)))))


def report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(f"\n{name}: n={len(ordered)} min={ordered[0] * 1000:.0f} ms median="
          f"{statistics.median(ordered) * 1000:.0f} ms p95={p95 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms")
    assert ordered[-1] <= BOUND_S, f"{name}: slowest replica took {ordered[-1]:.3f} s"


def test_a_provider_created_on_one_replica_serves_on_all_within_a_second(replicas: Replicas, upstream) -> None:
    async def run() -> list[float]:
        latencies: list[float] = []
        async with httpx.AsyncClient(timeout=30) as client:
            for trial in range(TRIALS):
                slug = f"p{trial}"
                made = await client.post(f"{replicas.gateways[trial % 3].url}/admin/api/providers", headers=ADMIN,
                                         json={"slug": slug, "spec": "openai", "custom_host": upstream.v1})
                assert made.status_code in (200, 201), made.text
                latencies += await seen_by_all(
                    replicas, client,
                    lambda i, slug=slug: client.post(replicas.chat_url(i), json=chat(f"@{slug}/m1")),
                    lambda answer: answer.status_code == 200)
        return latencies

    report("catalog (provider created)", asyncio.run(run()))


def test_a_saved_config_replaced_on_one_replica_routes_on_all_within_a_second(replicas: Replicas, upstream) -> None:
    def config(version: int) -> dict[str, object]:
        return {"provider": "openai", "custom_host": upstream.v1, "override_params": {"model": f"v{version}"}}

    made = httpx.post(f"{replicas.gateways[0].url}/admin/api/configs", headers=ADMIN, timeout=30,
                      json={"id": "routing", "config": config(0)})
    assert made.status_code == 201, made.text

    async def run() -> list[float]:
        latencies: list[float] = []
        async with httpx.AsyncClient(timeout=30) as client:
            for trial in range(1, TRIALS + 1):
                put = await client.put(f"{replicas.gateways[trial % 3].url}/admin/api/configs/routing",
                                       headers=ADMIN, json={"config": config(trial)})
                assert put.status_code == 200, put.text
                latencies += await seen_by_all(
                    replicas, client,
                    lambda i: client.post(replicas.chat_url(i), json=chat(), headers={"x-portkey-config": "routing"}),
                    lambda answer, trial=trial: answer.status_code == 200 and answer.json()["model"] == f"v{trial}")
        return latencies

    report("config (saved config replaced)", asyncio.run(run()))


def test_a_key_created_then_revoked_on_one_replica_is_refused_by_all_within_a_second(
        replicas: Replicas, upstream) -> None:
    head = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}

    async def run() -> tuple[list[float], list[float]]:
        created, revoked = [], []
        async with httpx.AsyncClient(timeout=30) as client:
            for trial in range(TRIALS):
                made = await client.post(f"{replicas.gateways[trial % 3].v1}/api-keys/organisation/service",
                                         headers=ADMIN, json={"name": f"k{trial}", "scopes": ["completions.write"]})
                assert made.status_code == 200, made.text
                key_id, secret = made.json()["id"], made.json()["key"]
                keyed = {**head, "x-portkey-api-key": secret}

                def ask(i: int, keyed=keyed):
                    return client.post(replicas.chat_url(i), json=chat(), headers=keyed)

                created += await seen_by_all(replicas, client, ask, lambda answer: answer.status_code == 200)
                gone = await client.delete(f"{replicas.gateways[(trial + 1) % 3].v1}/api-keys/{key_id}", headers=ADMIN)
                assert gone.status_code == 200, gone.text
                revoked += await seen_by_all(
                    replicas, client, ask,
                    lambda answer: answer.status_code == 401 and "revoked" in answer.json()["message"])
        return created, revoked

    created, revoked = asyncio.run(run())
    report("key created", created)
    report("key revoked", revoked)


def test_a_provider_added_then_removed_by_the_cli_reaches_every_replica_within_a_second(
        tmp_path: Path, replicas: Replicas, upstream) -> None:
    import subprocess
    import sys

    env = {**replicas.gateways[0].env, "SLUICEGATE_DATA_DIR": str(tmp_path / "cli")}

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "sluicegate", "providers", *args], env=env, timeout=120,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    async def observe(expected: int) -> list[float]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await seen_by_all(
                replicas, client, lambda i: client.post(replicas.chat_url(i), json=chat("@from-cli/m1")),
                lambda answer: answer.status_code == expected)

    cli("add", "from-cli", "--custom-host", upstream.v1)
    added = asyncio.run(observe(200))
    cli("rm", "from-cli")
    removed = asyncio.run(observe(400))
    report("catalog via the CLI (added, removed)", added + removed)
