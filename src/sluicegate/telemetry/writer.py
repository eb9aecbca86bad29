"""Writing log batches to the store: one transaction per batch, ids already stored skipped.

``ON CONFLICT DO NOTHING`` on the gateway-made ids makes every write idempotent: a batch whose commit was
lost with the connection is spooled and replayed, and whatever part of it did land is not written twice.

The INSERTs are compiled once, by SQLAlchemy, from the Tables for the store's dialect, and executed with
positional tuples: SQLAlchemy's per-row parameter processing for a 38-column row cost more CPU than
everything else the log does per request (measured: ~90 µs of CPU per row through Core, ~40 µs this way,
SQLite's own work included). The only conversion it did for us, JSON, is done here.

PostgreSQL: asyncpg runs on the event loop, and executemany of the one-row statement is pipelined.
SQLite: see sqlite_writer.py, which writes from a thread of its own.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import JSON, Table, bindparam, select
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.request_logs import request_attempts, request_logs
from .sink import RejectedBatch
from .spool import Entry

log = logging.getLogger("sluicegate.telemetry")


class MalformedRow(ValueError):
    """A row without a column of its table, or not a row at all (a spooled line of another shape)."""


# Errors about the data, not the connection: spooling them would only replay the refusal later.
_REFUSALS = (DataError, IntegrityError, ProgrammingError)
# A value the driver or the JSON encoder cannot encode, or a row that lacks a column (rows are made storable
# and complete first; this is the backstop that keeps such a row from being taken for an outage and failing
# its batch, and every replay of it, again and again).
_UNENCODABLE = (UnicodeError, TypeError, ValueError, OverflowError,  # OverflowError: an int SQLite cannot hold
                MalformedRow)
# SQLite allows 32,766 bound parameters per statement (since 3.32) and binds them holding the GIL, which it
# gives up only while the statement runs. Every statement is one more hand-over of the GIL from the event loop
# to the writer thread and back, and under load those hand-overs cost the loop more than the binding: with
# 2,048 (32 log rows) a busy gateway waited ~5 % of the time for the GIL in futex calls, and with 16,384
# (256 log rows, ~0.3 ms of binding) it served 6 % more requests (docs/benchmarks.md, "The request log's
# batches, pipelined"). A quiet gateway writes small batches, whose statements stay small.
PARAMS_PER_STATEMENT = 16_384


class Insert:
    """An idempotent INSERT for one table, compiled by SQLAlchemy for one dialect, fed positional tuples.

    ``multirow(n)`` is the same INSERT with n rows of VALUES: SQLite binds a whole chunk under one GIL
    hold instead of taking and dropping the GIL once per row as executemany does. With qmark parameters
    (SQLite) it is the one-row statement's VALUES group repeated, made by string operations: compiling a
    256-row statement through SQLAlchemy took over 100 ms, once per new chunk size, which a busy gateway
    paid on its event loop.
    """

    def __init__(self, dialect: Any, table: Table, key: list[str]) -> None:
        self._dialect = dialect
        # Only the store's dialect is imported: PostgreSQL's took a fifth of a second at every SQLite start.
        self._factory: Any
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            self._factory = postgresql.insert
        else:
            from sqlalchemy.dialects import sqlite

            self._factory = sqlite.insert
        self._table, self._key = table, key
        self.sql, self.columns = self._compile(1)
        self._multirow: dict[int, str] = {}
        self._parts = _values_parts(self.sql) if dialect.paramstyle == "qmark" else None
        json_columns = {c.name for c in table.c if isinstance(c.type, JSON)}
        self._json = tuple(i for i, name in enumerate(self.columns) if name in json_columns)
        self._values = operator.itemgetter(*self.columns)
        self.chunk_max = 1 << ((PARAMS_PER_STATEMENT // len(self.columns)).bit_length() - 1)

    def _compile(self, rows: int) -> tuple[str, list[str]]:
        stmt = self._factory(self._table)
        if rows > 1:
            stmt = stmt.values([{c.name: bindparam(f"{c.name}_{i}") for c in self._table.c} for i in range(rows)])
        compiled = stmt.on_conflict_do_nothing(index_elements=self._key).compile(dialect=self._dialect)
        assert compiled.positiontup is not None, "both dialects' drivers take positional parameters"
        return compiled.string, list(compiled.positiontup)

    def multirow(self, rows: int) -> str:
        if rows == 1:
            return self.sql
        if rows not in self._multirow:
            if self._parts is not None:
                head, group, tail = self._parts
                self._multirow[rows] = head + ", ".join([group] * rows) + tail
            else:
                self._multirow[rows] = self._compile(rows)[0]
        return self._multirow[rows]

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [self.values(row) for row in rows]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """One row's parameters, in the statement's order (JSON columns as JSON text; the row is not changed:
        a batch that fails is spooled as it was)."""
        try:
            values = self._values(row)
        except (KeyError, TypeError) as exc:  # refused alone (the batch is split), never taken for an outage
            raise MalformedRow(f"not a {self._table.name} row: {type(exc).__name__} {exc}") from None
        if not self._json:
            return values
        converted = list(values)
        for position in self._json:
            converted[position] = orjson.dumps(converted[position]).decode()
        return tuple(converted)

    def chunks(self, rows: list[dict[str, Any]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(statement, flat parameters) per chunk: the largest power of two that fits, then smaller ones,
        so at most a handful of distinct statements are ever made. Lazily: each chunk's parameters are
        built just before it runs."""
        start = 0
        while start < len(rows):
            size = min(self.chunk_max, 1 << ((len(rows) - start).bit_length() - 1))
            yield self.multirow(size), tuple(chain.from_iterable(map(self.values, rows[start:start + size])))
            start += size


def _values_parts(sql: str) -> tuple[str, str, str]:
    """A one-row qmark INSERT split around its VALUES group: (``INSERT … VALUES ``, ``(?, …)``, the rest)."""
    head, sep, rest = sql.partition(" VALUES ")
    end = rest.find(")") + 1
    group = rest[:end]
    if not sep or not end or group.strip("(?, )"):
        raise ValueError(f"not a one-row qmark INSERT: {sql[:80]}")
    return head + sep, group, rest[end:]


class StoreWriter:
    """What every writer shares: the probe, and isolating the records a store refuses."""

    def __init__(self, dialect: Any) -> None:
        self.logs = Insert(dialect, request_logs, ["id"])
        self.attempts = Insert(dialect, request_attempts, ["request_id", "position"])

    async def write(self, entries: list[Entry]) -> None:
        """Store ``entries`` in one transaction; an empty list only checks that the store answers."""
        if not entries:
            await self._ping()
            return
        try:
            await self._insert(entries)
        except Exception as exc:
            if not (isinstance(exc, _UNENCODABLE) or self._refused(exc)):
                raise  # the store is unreachable: the sink spools
            await self._isolate(entries, exc)

    async def close(self) -> None:
        """Release what the writer holds of its own (the engine is the app's)."""

    async def _ping(self) -> None:
        raise NotImplementedError

    async def _insert(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def _refused(self, exc: Exception) -> bool:
        raise NotImplementedError

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


class AsyncWriter(StoreWriter):
    """Through the app's async engine: PostgreSQL (asyncpg pipelines executemany on the event loop)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine.dialect)
        self._engine = engine

    async def _ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(select(1))

    async def _insert(self, entries: list[Entry]) -> None:
        rows = [row for row, _ in entries]
        attempts = [attempt for _, batch in entries for attempt in batch]
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql(self.logs.sql, self.logs.params(rows))
            if attempts:
                await conn.exec_driver_sql(self.attempts.sql, self.attempts.params(attempts))

    def _refused(self, exc: Exception) -> bool:
        if isinstance(exc, _REFUSALS):
            return True
        # Other statement errors refuse the data too, unless they are about the connection.
        return isinstance(exc, StatementError) and not _is_connection_error(exc)


def _is_connection_error(exc: StatementError) -> bool:
    # SQLAlchemy wraps driver errors; DBAPIError.connection_invalidated marks a lost connection.
    return bool(getattr(exc, "connection_invalidated", False)) or exc.__class__.__name__ in (
        "OperationalError", "InterfaceError",
    )

