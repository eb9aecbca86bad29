"""The store backend: entries in the ``response_cache`` table (SQLite or PostgreSQL), shared by the
replicas that share the store. Every query is an async call (aiosqlite runs SQLite in its own thread);
expired rows are skipped on read and deleted on every ``PRUNE_EVERY``-th write."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.response_cache import response_cache as table

PRUNE_EVERY = 100


class StoreBackend:
    def __init__(self, engine: AsyncEngine, wall_clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._wall_clock = wall_clock
        self._writes = 0

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    async def get(self, key: str) -> bytes | None:
        query = select(table.c.data).where(table.c.key == key, table.c.expires_ms > self._now_ms())
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def put(self, key: str, data: bytes, ttl_s: float) -> None:
        now = self._now_ms()
        self._writes += 1
        async with self._engine.begin() as conn:  # replace: one transaction, the same on both dialects
            await conn.execute(delete(table).where(table.c.key == key))
            await conn.execute(insert(table).values(key=key, expires_ms=now + int(ttl_s * 1000), data=data))
            if self._writes % PRUNE_EVERY == 0:
                await conn.execute(delete(table).where(table.c.expires_ms <= now))

    async def close(self) -> None:
        """The engine is the app's: closed with the store."""
