from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from sluicegate.settings import Settings
from sluicegate.store import StoreConfigError, create_engine, database_url
from sluicegate.store.engine import StoreUnwritable, UnwritableErrors


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgresql://u:p@db:5433/gw", "postgresql+asyncpg://u:p@db:5433/gw"),
        ("postgres://u@db/gw", "postgresql+asyncpg://u@db/gw"),
        ("postgresql+asyncpg://u@db/gw", "postgresql+asyncpg://u@db/gw"),
        ("sqlite:////var/lib/sg.db", "sqlite+aiosqlite:////var/lib/sg.db"),
    ],
)
def test_database_url_picks_the_async_driver(configured: str, expected: str) -> None:
    url = database_url(Settings(database_url=configured))
    assert url.render_as_string(hide_password=False) == expected


def test_default_is_sqlite_file_in_data_dir(tmp_path: Path) -> None:
    url = database_url(Settings(data_dir=tmp_path / "d"))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "d" / "sluicegate.db")


@pytest.mark.parametrize("configured", ["mysql://u@h/db", "not a url at all"])
def test_unsupported_url_is_a_clear_error(configured: str) -> None:
    with pytest.raises(StoreConfigError, match="SLUICEGATE_DATABASE_URL"):
        database_url(Settings(database_url=configured))


@pytest.mark.parametrize("configured", ["postgresql://u:pw@127.0.0.1:99999/db", "postgresql://u:pw@127.0.0.1:0/db"])
def test_a_port_out_of_range_is_a_clear_error(configured: str) -> None:
    # It reached the driver, whose OverflowError became a 122-line traceback in the CLI.
    with pytest.raises(StoreConfigError, match="^SLUICEGATE_DATABASE_URL: the port must be a number from 1 to 65535"):
        database_url(Settings(database_url=configured))


@pytest.mark.parametrize("configured", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://",
                                        "sqlite+aiosqlite:///:memory:"])
def test_an_in_memory_sqlite_database_is_refused(configured: str) -> None:
    # It served: each --workers worker with keys and a catalog of its own, and every log gone at a restart.
    with pytest.raises(StoreConfigError, match="^SLUICEGATE_DATABASE_URL names an in-memory SQLite database"):
        database_url(Settings(database_url=configured))


@pytest.mark.parametrize(("query", "ssl"), [("sslmode=require", "require"), ("sslmode=disable", "disable"),
                                            ("ssl=verify-full", "verify-full")])
def test_libpq_s_sslmode_reaches_asyncpg_as_ssl(query: str, ssl: str) -> None:
    url = database_url(Settings(database_url=f"postgresql://u:p@db/gw?{query}"))
    assert dict(url.query) == {"ssl": ssl}


@pytest.mark.parametrize(("query", "message"), [
    # Each reached asyncpg.connect as an unknown keyword argument: a TypeError traceback at start.
    ("connect_timeout=5", "unsupported parameter 'connect_timeout'"),
    ("application_name=x", "unsupported parameter 'application_name'"),
    ("sslmode=required", "sslmode must be given once, one of disable"),
    ("ssl=true", "sslmode must be given once"),
    ("sslmode=require&sslmode=disable", "sslmode must be given once"),
    ("sslmode=require&ssl=disable", "sslmode must be given once"),
])
def test_other_url_parameters_are_refused_by_name(query: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=f"^SLUICEGATE_DATABASE_URL: {message}"):
        database_url(Settings(database_url=f"postgresql://u:secret-pw@db/gw?{query}"))


async def test_sqlite_engine_creates_private_data_dir_and_uses_wal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nested" / "data")
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
    finally:
        await engine.dispose()
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert settings.sqlite_path.exists()


@pytest.mark.parametrize("name", ["sluicegate.db", "with space?and#hash%20.db"])
async def test_a_deleted_sqlite_file_stays_deleted_and_is_named_as_such(tmp_path: Path, name: str) -> None:
    """A new connection after the file was deleted must not create an empty database in its place."""
    database = tmp_path / name
    engine = create_engine(Settings(database_url=f"sqlite:///{database}"))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        await engine.dispose()  # the next connection is a new one: the case that used to re-create the file
        for path in tmp_path.iterdir():
            path.unlink()
        for _ in range(3):
            with pytest.raises(StoreUnwritable, match="was deleted or replaced"):
                async with engine.connect() as conn:
                    await conn.scalar(text("SELECT 1"))
        assert list(tmp_path.iterdir()) == []
    finally:
        await engine.dispose()
        await _aiosqlite_threads_ended()


async def _aiosqlite_threads_ended() -> None:
    """aiosqlite ends a failed connection's thread without waiting for it, and that thread reports back to
    the event loop: let it while the test's loop still runs (bounded: 5 s)."""
    for _ in range(500):
        if not any("_connection_worker_thread" in thread.name for thread in threading.enumerate()):
            return
        await asyncio.sleep(0.01)


def test_a_store_that_cannot_be_written_is_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    errors = UnwritableErrors(None, clock=lambda: now[0])
    full = SimpleNamespace(original_exception=sqlite3.OperationalError("database or disk is full"))
    other = SimpleNamespace(original_exception=sqlite3.OperationalError("no such column: x"))
    with caplog.at_level(logging.ERROR, logger="sluicegate.store"):
        for second in (0.0, 1.0, 59.0, 60.0):
            now[0] = second
            assert isinstance(errors.translate(full), StoreUnwritable)
        assert errors.translate(other) is None  # a mistake in a statement is not the store's state
    assert [r.getMessage() for r in caplog.records] == ["the database cannot be written: database or disk is full"] * 2


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["", "?sslmode=disable", "?sslmode=prefer"])
async def test_postgres_engine_connects(pg_settings: Settings, query: str) -> None:
    engine = create_engine(Settings(data_dir=pg_settings.data_dir, database_url=pg_settings.database_url + query))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert engine.dialect.driver == "asyncpg"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("words", ["database disk image is malformed", "file is not a database"])
def test_a_damaged_sqlite_file_reads_as_an_outage_not_a_bug(words: str) -> None:
    """The logs API on a file cut short while the gateway ran was a 500 with the statement in the log."""
    from sqlalchemy.exc import DatabaseError

    from sluicegate.store.engine import store_outage

    damaged = DatabaseError("SELECT 1", {}, sqlite3.DatabaseError(words))
    assert store_outage(damaged) == f"the database cannot be used ({words})"
    assert store_outage(DatabaseError("SELECT 1", {}, sqlite3.DatabaseError("some other error"))) is None
