"""Writing log batches to the store: one transaction per batch, executemany, ids already stored skipped.

``ON CONFLICT DO NOTHING`` on the gateway-made ids makes every write idempotent: a batch whose commit was
lost with the connection is spooled and replayed, and whatever part of it did land is not written twice.

The INSERT is compiled once, by SQLAlchemy, from the Table for the engine's dialect, and executed with
positional tuples through ``exec_driver_sql``: SQLAlchemy's per-row parameter processing for a 36-column
row cost more CPU than everything else the log does per request (measured: ~90 µs of CPU per row through
Core, ~40 µs this way, SQLite's own work included). The only conversion it did for us, JSON, is done here.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import JSON, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.request_logs import request_attempts, request_logs
from .sink import RejectedBatch
from .spool import Entry

log = logging.getLogger("sluicegate.telemetry")

# Errors about the data, not the connection: spooling them would only replay the refusal later.
_REFUSALS = (DataError, IntegrityError, ProgrammingError)


class _Insert:
    """An idempotent INSERT for one table, compiled for one dialect, fed rows as positional tuples."""

    def __init__(self, engine: AsyncEngine, table: Table, key: list[str]) -> None:
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        compiled = dialect.insert(table).on_conflict_do_nothing(index_elements=key).compile(dialect=engine.dialect)
        assert compiled.positiontup is not None, "both dialects' drivers take positional parameters"
        self.sql = compiled.string
        self._columns = list(compiled.positiontup)
        self._json = {c.name for c in table.c if isinstance(c.type, JSON)}

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        columns, json_columns = self._columns, self._json
        return [
            tuple(orjson.dumps(row[c]).decode() if c in json_columns else row[c] for c in columns)
            for row in rows
        ]


class StoreWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert_logs = _Insert(engine, request_logs, ["id"])
        self._insert_attempts = _Insert(engine, request_attempts, ["request_id", "position"])

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
        logs, tries = self._insert_logs, self._insert_attempts
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql(logs.sql, logs.params(rows))
            if attempts:
                await conn.exec_driver_sql(tries.sql, tries.params(attempts))

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
