"""The store's two periodic reads: the reload loop's version check (polling.py) and the readiness probe's ping.

On PostgreSQL they go through the app's async engine. On SQLite they are made on the event loop's own thread
with a stdlib connection to the same file: reading the version table there takes ~8 µs, where each trip
through SQLAlchemy and aiosqlite's thread took ~400 µs of the loop's time in slices and woke a thread on the
other core, three times a second (the SQLite reload interval is short: no change notifications), in the way
of any request that arrived meanwhile (docs/benchmarks.md). WAL lets the read run beside any writer without
waiting; where SQLite would still make a reader wait (a connection holding the file in exclusive locking
mode, a crashed writer's log being recovered) it answers "busy" at once instead of blocking the loop (busy
timeout 0).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import FileWatch, no_create_uri, sqlite_file
from .state import VERSIONS_QUERY, read_versions, versions_by_id


class PeriodicReads(Protocol):
    async def versions(self) -> dict[int, int]:
        """Every snapshot's version (the ``catalog_state`` rows)."""

    async def ping(self) -> None:
        """Raises while the store cannot be read."""

    def close(self) -> None: ...


class EngineReads:
    """Through the app's engine: a pooled connection per read (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def versions(self) -> dict[int, int]:
        async with self._engine.connect() as conn:
            return await read_versions(conn)

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def close(self) -> None:
        pass  # the engine is disposed by its owner


VERSIONS_SQL = str(VERSIONS_QUERY.compile(dialect=sqlite.dialect()))


class SqliteFileReads:
    """On the loop's thread, one query-only connection to the SQLite file, opened at the first read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._watch = FileWatch(path)  # the file as it is now: a deleted or replaced one fails every read
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(no_create_uri(self._path), uri=True, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
        return self._conn

    def _read(self) -> dict[int, int]:
        self._watch.check()  # an unlinked file still reads fine through an open connection
        return versions_by_id(self._connection().execute(VERSIONS_SQL))

    async def versions(self) -> dict[int, int]:
        return self._read()

    async def ping(self) -> None:
        try:
            self._read()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):  # the file is there, held for a moment: the next read will do
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _busy(exc: sqlite3.OperationalError) -> bool:
    return (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # extended codes too


def periodic_reads(engine: AsyncEngine) -> PeriodicReads:
    path = sqlite_file(engine)
    return SqliteFileReads(path) if path is not None else EngineReads(engine)
