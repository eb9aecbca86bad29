"""The store's periodic reads (store/periodic_reads.py): on SQLite, made on the event loop's thread without
yielding to it, fresh after every write, never waiting for a writer, and failing once the file is gone; on
PostgreSQL, through the engine."""

from __future__ import annotations

import sqlite3
import time

import pytest

from sluicegate.store.engine import StoreUnwritable, sqlite_file
from sluicegate.store.periodic_reads import EngineReads, SqliteFileReads, periodic_reads
from sluicegate.store.state import bump_access_version, bump_catalog_version, read_versions


def finished_without_yielding(coro) -> object:
    """The coroutine's result if it ran to its end in one step (no await on I/O, no thread hop), else fail."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the read yielded to the event loop")


async def test_each_store_gets_its_kind_of_reads(engine) -> None:
    reads = periodic_reads(engine)
    assert isinstance(reads, SqliteFileReads if sqlite_file(engine) else EngineReads)
    reads.close()


async def test_versions_are_the_stores_and_fresh_after_each_write(engine) -> None:
    reads = periodic_reads(engine)
    try:
        async with engine.connect() as conn:
            assert await reads.versions() == await read_versions(conn)
        async with engine.begin() as conn:
            await bump_catalog_version(conn)
            await bump_access_version(conn)
        async with engine.connect() as conn:
            expected = await read_versions(conn)
        assert await reads.versions() == expected and expected[1] >= 1 and expected[2] >= 1
        await reads.ping()
    finally:
        reads.close()


@pytest.fixture
def sqlite_reads(engine):
    path = sqlite_file(engine)
    if path is None:
        pytest.skip("SQLite only")
    reads = SqliteFileReads(path)
    yield path, reads
    reads.close()


async def test_on_sqlite_a_read_runs_on_the_loops_thread_in_one_step(sqlite_reads, engine) -> None:
    _path, reads = sqlite_reads
    async with engine.connect() as conn:
        expected = await read_versions(conn)
    for _ in range(3):  # the first opens the connection; none hands anything to a thread
        assert finished_without_yielding(reads.versions()) == expected
        assert finished_without_yielding(reads.ping()) is None


async def test_on_sqlite_a_writer_holding_the_lock_does_not_make_the_read_wait(sqlite_reads, engine) -> None:
    path, reads = sqlite_reads
    before = await reads.versions()
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # WAL: readers still read the last commit
        writer.execute("UPDATE catalog_state SET version = version + 100")
        started = time.perf_counter()
        assert await reads.versions() == before  # not the uncommitted write
        await reads.ping()
        assert time.perf_counter() - started < 0.05
        writer.execute("COMMIT")
        assert await reads.versions() == {state: version + 100 for state, version in before.items()}
    finally:
        writer.close()


async def test_on_sqlite_the_connection_cannot_write(sqlite_reads) -> None:
    _path, reads = sqlite_reads
    await reads.versions()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reads._connection().execute("UPDATE catalog_state SET version = 0")


async def test_on_sqlite_a_locked_file_fails_the_poll_at_once_and_not_the_ping(sqlite_reads, engine) -> None:
    """Exclusive locking mode is the one way a reader of a WAL file meets a lock: the read must answer "busy"
    at once (busy timeout 0: never block the loop), the poll then skips a turn, and readiness stays up."""
    path, reads = sqlite_reads
    await engine.dispose()  # only the holder may have the file open when it takes it for itself
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE catalog_state SET version = version")
        started = time.perf_counter()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await reads.versions()
        await reads.ping()
        assert time.perf_counter() - started < 0.05
    finally:
        holder.close()
    await reads.versions()  # the lock gone, it reads again


async def test_on_sqlite_a_deleted_file_fails_every_read(sqlite_reads) -> None:
    path, reads = sqlite_reads
    await reads.versions()  # the connection is open: through it, an unlinked file would still read fine
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        name.unlink(missing_ok=True)
    with pytest.raises(StoreUnwritable, match="deleted or replaced"):
        await reads.versions()
    with pytest.raises(StoreUnwritable):
        await reads.ping()
    assert not path.exists()  # and nothing made an empty database in its place
    unopened = SqliteFileReads(path)
    with pytest.raises((StoreUnwritable, sqlite3.OperationalError)):
        await unopened.versions()
    assert not path.exists()
    unopened.close()


async def test_closing_twice_is_harmless(sqlite_reads) -> None:
    _path, reads = sqlite_reads
    await reads.versions()
    reads.close()
    reads.close()
    assert (await reads.versions()).keys()  # a read after close opens again
