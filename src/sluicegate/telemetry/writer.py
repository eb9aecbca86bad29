"""Writing log batches to the store: one transaction per batch, executemany, ids already stored skipped.

``ON CONFLICT DO NOTHING`` on the gateway-made ids makes every write idempotent: a batch whose commit was
lost with the connection is spooled and replayed, and whatever part of it did land is not written twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.request_logs import request_attempts, request_logs
from .sink import RejectedBatch
from .spool import Entry

log = logging.getLogger("sluicegate.telemetry")

# Errors about the data, not the connection: spooling them would only replay the refusal later.
_REFUSALS = (DataError, IntegrityError, ProgrammingError)


class StoreWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert_logs = dialect.insert(request_logs).on_conflict_do_nothing(index_elements=["id"])
        self._insert_attempts = dialect.insert(request_attempts).on_conflict_do_nothing(
            index_elements=["request_id", "position"]
        )

    async def write(self, entries: list[Entry]) -> None:
        """Store ``entries``; an empty list only checks that the store answers."""
        if not entries:
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
            return
        try:
            await self._insert(entries)
        except _REFUSALS + (StatementError,) as exc:
            if not isinstance(exc, _REFUSALS) and _is_connection_error(exc):
                raise
            await self._isolate(entries, exc)

    async def _insert(self, entries: list[Entry]) -> None:
        rows = [row for row, _ in entries]
        attempts = [attempt for _, batch in entries for attempt in batch]
        async with self._engine.begin() as conn:
            await conn.execute(self._insert_logs, rows)
            if attempts:
                await conn.execute(self._insert_attempts, attempts)

    async def _isolate(self, entries: list[Entry], exc: Exception) -> None:
        """One bad record must not cost its whole batch: halve until the refused ones are alone."""
        if len(entries) == 1:
            raise RejectedBatch(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}", 1) from None
        middle = len(entries) // 2
        refused: list[RejectedBatch] = []
        for half in (entries[:middle], entries[middle:]):
            try:
                await self.write(half)
            except RejectedBatch as error:
                refused.append(error)
        if refused:
            raise RejectedBatch(str(refused[0]), sum(error.count for error in refused))


def _is_connection_error(exc: StatementError) -> bool:
    # SQLAlchemy wraps driver errors; DBAPIError.connection_invalidated marks a lost connection.
    return bool(getattr(exc, "connection_invalidated", False)) or exc.__class__.__name__ in (
        "OperationalError", "InterfaceError",
    )
