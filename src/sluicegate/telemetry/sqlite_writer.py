"""The SQLite log writer: its own connection, in a thread of its own, one call per batch.

Through aiosqlite, every statement is a round trip between the event loop and aiosqlite's thread, and
under load each one waits for the busy loop and for the GIL: a 1,000-record batch took two seconds, the
queue grew without bound and the records it held made every garbage collection slower. Here the whole
transaction (BEGIN, multi-row INSERTs, COMMIT) is one job for the writer thread, which the loop awaits once.
The statements are the ones SQLAlchemy compiled for SQLite (writer.py), run on a stdlib sqlite3 connection
to the same file; WAL lets it write while the app's engine reads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

from ..store.engine import SQLITE_BUSY_TIMEOUT_MS, FileWatch, no_create_uri
from .spool import Entry
from .thread_priority import RAISE_AFTER_S, IdlePriority
from .writer import StoreWriter

# About the data: retrying cannot help. OperationalError (locked past the busy timeout, disk I/O error,
# a missing table before migrations ran) is treated as the store being unavailable: spool, retry later.
_REFUSALS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.InterfaceError)

class SqliteWriter(StoreWriter):
    def __init__(self, dialect: Any, path: Path) -> None:
        super().__init__(dialect)
        self._path = path
        self._watch = FileWatch(path)  # a deleted database file is an outage (spool), not a silent loss
        # In the scheduler's idle class, so that its commits do not delay the event loop (thread_priority.py).
        self.priority = IdlePriority()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluicegate-log-writer",
                                            initializer=self.priority.enter)
        self._conn: sqlite3.Connection | None = None  # created, used and closed in the writer thread only

    async def _run(self, func: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        raising = loop.call_later(RAISE_AFTER_S, self.priority.raise_) if self.priority.idle else None
        try:
            return await loop.run_in_executor(self._executor, func, *args)
        finally:
            if raising is not None:
                raising.cancel()
                self.priority.lower()

    async def _ping(self) -> None:
        await self._run(self._ping_sync)

    async def _insert(self, entries: list[Entry]) -> None:
        rows = [row for row, _ in entries]
        attempts = [attempt for _, batch in entries for attempt in batch]
        # The parameters are built in the writer thread, chunk by chunk as the statements run: not on the
        # event loop, and the GIL is free while SQLite executes each chunk.
        await self._run(self._transaction, rows, attempts)

    def _refused(self, exc: Exception) -> bool:
        return isinstance(exc, _REFUSALS)

    async def close(self) -> None:
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)

    # -- in the writer thread --------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(no_create_uri(self._path), uri=True, isolation_level=None,
                                   timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            # The same settings as the app's engine (store/engine.py): WAL, NORMAL sync (durable under WAL).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # A multi-row INSERT keeps a statement journal, which SQLite spills to a file in the system's
            # temporary directory past 64 KiB: created, written and unlinked at most commits. In memory, the
            # writer does less, and writes nothing outside the data directory.
            conn.execute("PRAGMA temp_store=MEMORY")
            self._conn = conn
        return self._conn

    def _ping_sync(self) -> None:
        # Take the write lock, not just read: under WAL a reader gets through while another process holds
        # the lock, and a store that answers SELECT 1 but accepts no write is not up.
        self._watch.check()
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")

    def _transaction(self, rows: list[dict[str, Any]], attempts: list[dict[str, Any]]) -> None:
        self._watch.check()
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            for sql, params in chain(self.logs.chunks(rows), self.attempts.chunks(attempts)):
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
