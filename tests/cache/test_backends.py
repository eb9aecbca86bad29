"""Every backend keeps the same contract: what was put is got back until its time is up, a put replaces.
The store backend runs on both dialects (the ``engine`` fixture: migrated SQLite and PostgreSQL), Redis on
the local server."""

from __future__ import annotations

import uuid

import pytest

from sluicegate.cache import MemoryBackend
from sluicegate.cache.redis_backend import RedisBackend
from sluicegate.cache.store_backend import StoreBackend
from tests.inprocess import Clock

REDIS_URL = "redis://127.0.0.1:6379/0"


async def check_contract(backend, clock: Clock | None) -> None:
    key = uuid.uuid4().hex
    assert await backend.get(key) is None
    await backend.put(key, b"one\n\x00\xff", 60)
    assert await backend.get(key) == b"one\n\x00\xff"
    await backend.put(key, b"two", 60)
    assert await backend.get(key) == b"two"
    if clock is not None:
        clock.now += 61
        assert await backend.get(key) is None


async def test_memory_backend_contract():
    clock = Clock()
    await check_contract(MemoryBackend(1 << 20, 100, clock=clock), clock)


async def test_store_backend_contract(engine):
    clock = Clock(now=1_700_000_000.0)
    await check_contract(StoreBackend(engine, wall_clock=clock), clock)


async def test_redis_backend_contract_and_native_expiry():
    backend = RedisBackend(REDIS_URL)
    try:
        await backend._redis.ping()
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    try:
        await check_contract(backend, None)
        key = uuid.uuid4().hex
        await backend.put(key, b"short", 0.05)
        ttl = await backend._redis.pttl("sluicegate:cache:" + key)
        assert 0 < ttl <= 50
    finally:
        await backend.close()
