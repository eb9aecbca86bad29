"""Retention: delete log rows older than ``log_retention_days``, in the background, a chunk at a time.

Chunks keep each delete transaction short: on SQLite a long delete would hold the one write lock and make
the sink's batches wait (and spool). Several workers may prune at once; deleting is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.request_logs import request_attempts, request_logs

log = logging.getLogger("sluicegate.telemetry")

DAY_MS = 86_400_000
CHUNK = 5_000
EVERY_S = 3600.0  # retention is in days: hourly pruning keeps the table within an hour of its bound


class Retention:
    def __init__(self, engine: AsyncEngine, days: int, *, clock: Callable[[], float] = time.time) -> None:
        if days < 1:
            raise ValueError("log retention must be at least one day")
        self._engine = engine
        self._days = days
        self._clock = clock

    def cutoff_ms(self) -> int:
        return int(self._clock() * 1000) - self._days * DAY_MS

    async def prune_once(self) -> int:
        """Delete everything older than the cutoff; the number of requests deleted."""
        cutoff = self.cutoff_ms()
        deleted = 0
        while True:
            async with self._engine.begin() as conn:
                ids = select(request_logs.c.id).where(request_logs.c.created_ms < cutoff).limit(CHUNK)
                result = await conn.execute(delete(request_logs).where(request_logs.c.id.in_(ids.scalar_subquery())))
                count = result.rowcount or 0
            deleted += count
            if count < CHUNK:
                break
        while True:
            async with self._engine.begin() as conn:
                ids = select(request_attempts.c.request_id).where(request_attempts.c.created_ms < cutoff).limit(CHUNK)
                result = await conn.execute(
                    delete(request_attempts).where(request_attempts.c.request_id.in_(ids.scalar_subquery()))
                )
            if (result.rowcount or 0) < CHUNK:
                break
        return deleted

    async def run(self, every_s: float = EVERY_S) -> None:
        while True:
            try:
                deleted = await self.prune_once()
                if deleted:
                    log.info("request log retention: deleted %d requests older than %d days", deleted, self._days)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("request log retention failed (%s); retrying later", type(exc).__name__)
            await asyncio.sleep(every_s)
