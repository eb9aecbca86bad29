"""Run the packaged Alembic migrations, programmatically (``serve`` start, ``sluicegate db upgrade``).

Several processes may start at once (workers, a CLI): PostgreSQL serialises them with an advisory lock held
for the migration transaction; SQLite with an exclusive lock on a file next to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ..settings import Settings
from .engine import create_engine, is_sqlite, sqlite_file

_HERE = Path(__file__).resolve().parent
# Any constant works; this one spells "sluicegt" so it is recognisable in pg_locks.
_PG_LOCK_KEY = 0x736C7569636567


def alembic_config() -> Config:
    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


async def upgrade(engine_or_url: AsyncEngine | URL | str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); a no-op when already there."""
    engine, owned = _as_engine(engine_or_url)
    try:
        async with _sqlite_lock(engine):
            async with engine.begin() as conn:
                if not is_sqlite(engine):
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                await conn.run_sync(_upgrade_sync, revision)
    finally:
        if owned:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def _upgrade_sync(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _as_engine(engine_or_url: AsyncEngine | URL | str) -> tuple[AsyncEngine, bool]:
    if isinstance(engine_or_url, AsyncEngine):
        return engine_or_url, False
    url = (
        engine_or_url.render_as_string(hide_password=False)
        if isinstance(engine_or_url, URL)
        else engine_or_url
    )
    return create_engine(Settings(database_url=url)), True


@contextlib.asynccontextmanager
async def _sqlite_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    path = sqlite_file(engine)
    if path is None:
        yield
        return
    import fcntl  # POSIX only; the gateway targets Linux/macOS

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(str(path) + ".migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
