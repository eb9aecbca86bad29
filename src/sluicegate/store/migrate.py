"""Run the packaged Alembic migrations, programmatically (``serve`` start, ``sluicegate db upgrade``).

Several processes may start at once (workers, a CLI): PostgreSQL serialises them with an advisory lock held
for the migration transaction; SQLite with an exclusive lock on a file next to the database.

A store already at the newest revision (every start but the first after an upgrade) is recognised without
Alembic: one SELECT of its version row against the head read from the migration files' text. An empty
database (a first start) gets the schema from the tables and is stamped at that head (fresh.py). Importing
Alembic (with Mako and Pygments) was a quarter of the gateway's start-up time and ~10 MB of its memory; it
is imported only when a store with tables has something to migrate, or anything about the checks is unclear.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..settings import Settings
from .engine import StoreConfigError, create_engine, is_sqlite, sqlite_file
from .fresh import create_at_head

_HERE = Path(__file__).resolve().parent
# Any constant works; this one spells "sluicegt" so it is recognisable in pg_locks.
_PG_LOCK_KEY = 0x736C7569636567
_VERSIONS = _HERE / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']\s*$", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(?:[\"']([^\"']+)[\"']|(None))\s*$", re.M)

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


async def upgrade(engine_or_url: AsyncEngine | URL | str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); a no-op when already there. An empty
    database brought to "head" is created from the tables; a revision named explicitly (even the head's
    own) always goes through Alembic's migrations."""
    engine, owned = _as_engine(engine_or_url)
    try:
        head = packaged_head() if revision == "head" else None
        if head is not None and await _at_head(engine, head):
            return
        async with _sqlite_lock(engine):
            async with engine.begin() as conn:
                if not is_sqlite(engine):
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                await conn.run_sync(_upgrade_locked, head, revision)
    finally:
        if owned:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def packaged_head() -> str | None:
    """The newest revision, read from the migration files' text (no import); None unless there is exactly one
    head and every file names its revision and one parent plainly (a merge revision: ask Alembic)."""
    revisions, parents = set(), set()
    for path in _VERSIONS.glob("*.py"):
        source = path.read_text()
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        parent, _none = down[0]
        if parent:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


async def _at_head(engine: AsyncEngine, head: str) -> bool:
    """Is the store at the packaged ``head`` already? False whenever that is not certain (no version table
    yet, a database that cannot be reached now: the migration path then reports it)."""
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except SQLAlchemyError:
        return False
    return list(stored) == [head]


def _upgrade_locked(connection: Connection, head: str | None, revision: str) -> None:
    """Under the lock, looked at again (another process may have done the work while this one waited): an
    empty database is created at ``head``, one at ``head`` already is left alone, anything else migrates."""
    if head is not None:
        tables = connection.dialect.get_table_names(connection)
        if not tables:
            create_at_head(connection, head)
            return
        if "alembic_version" in tables:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            if list(stored) == [head]:
                return
    _upgrade_sync(connection, revision)


def _upgrade_sync(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    try:
        command.upgrade(cfg, revision)
    except CommandError as exc:  # a revision this package does not ship: most likely a newer sluicegate's
        raise StoreConfigError(
            f"the database's schema cannot be migrated ({str(exc)[:200]}); was it written by a newer "
            f"sluicegate? Run the version that wrote it, or a newer one") from None


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
