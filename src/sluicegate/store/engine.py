"""One async engine per process, for SQLite (default, embedded) or PostgreSQL (``SLUICEGATE_DATABASE_URL``).

The URL a user writes is the one libpq understands (``postgresql://…``); the async driver is our business,
so it is chosen here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import GatewayError
from ..settings import Settings

log = logging.getLogger("sluicegate.store")

# A CLI write and the server's poll may meet on the SQLite write lock; waiting a few seconds beats failing.
SQLITE_BUSY_TIMEOUT_MS = 5000

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


class StoreConfigError(ValueError):
    """The database URL cannot be used (unknown scheme, wrong driver)."""


def with_driver_errors(*errors: type[BaseException]) -> tuple[type[BaseException], ...]:
    """``errors`` and what a database driver raises itself, not wrapped by SQLAlchemy: asyncpg's errors at
    connect (a role or a database that does not exist). Without the driver imported, none can have been
    raised, so it is not imported here."""
    asyncpg = sys.modules.get("asyncpg")
    return (*errors, asyncpg.PostgresError, asyncpg.InterfaceError) if asyncpg is not None else errors


def database_url(settings: Settings) -> URL:
    """The async SQLAlchemy URL for ``settings``: the configured one, or the SQLite file in the data dir."""
    if not settings.database_url:
        return URL.create("sqlite+aiosqlite", database=str(settings.sqlite_path))
    try:
        url = make_url(settings.database_url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError; the message names the bad URL part
        raise StoreConfigError(f"SLUICEGATE_DATABASE_URL is not a database URL: {exc}") from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise StoreConfigError(
            f"SLUICEGATE_DATABASE_URL: unsupported scheme {url.drivername!r} "
            "(use postgresql://user@host/db or sqlite:///path)"
        )
    if driver == "sqlite+aiosqlite" and url.database in (None, "", ":memory:"):
        # Every process would have a database of its own, emptied when it stops: each --workers worker and
        # every CLI command its own keys and catalog, and no request log surviving a restart.
        raise StoreConfigError(
            "SLUICEGATE_DATABASE_URL names an in-memory SQLite database, which every process would have to itself "
            "and lose when it stops (keys, catalog, request log): name a file (sqlite:////var/lib/sluicegate/"
            "sluicegate.db), or leave it unset for the file in the data directory"
        )
    try:
        port = url.port
    except ValueError:  # not a number: make_url keeps it as text
        port = -1
    if port is not None and not 0 < port < 65536:  # the driver would raise OverflowError at connect
        raise StoreConfigError("SLUICEGATE_DATABASE_URL: the port must be a number from 1 to 65535")
    url = url.set(drivername=driver)
    return _asyncpg_query(url) if driver == "postgresql+asyncpg" and url.query else url


# The one libpq connection parameter a URL may carry, under asyncpg's name for it ("ssl" takes sslmode's
# values). Any other would reach asyncpg.connect as an unknown keyword argument: refused here, by name.
_SSL_PARAMETERS = ("sslmode", "ssl")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _asyncpg_query(url: URL) -> URL:
    modes: list[str] = []
    for name, value in url.query.items():
        if name not in _SSL_PARAMETERS:
            raise StoreConfigError(f"SLUICEGATE_DATABASE_URL: unsupported parameter {name[:40]!r} (supported: "
                                   f"sslmode={'|'.join(_SSL_MODES)})")
        modes.extend([value] if isinstance(value, str) else value)  # a parameter given twice is a tuple
    if len(modes) != 1 or modes[0] not in _SSL_MODES:
        raise StoreConfigError(f"SLUICEGATE_DATABASE_URL: sslmode must be given once, one of {', '.join(_SSL_MODES)}")
    return url.set(query={"ssl": modes[0]})


def is_sqlite(engine_or_url: AsyncEngine | URL) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, AsyncEngine) else engine_or_url
    return url.get_backend_name() == "sqlite"


def create_engine(settings: Settings, **engine_kwargs: Any) -> AsyncEngine:
    """Create the process's engine; for SQLite, create the data dir and switch the file to WAL."""
    url = database_url(settings)
    if is_sqlite(url):
        return _sqlite_engine(url, **engine_kwargs)
    return create_async_engine(url, pool_pre_ping=True, **engine_kwargs)


def _sqlite_engine(url: URL, **engine_kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(url, **engine_kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    watch = None
    if url.database and url.database != ":memory:":
        path = Path(os.path.abspath(url.database))
        make_private(path)  # the one place the file is created: connections only open it (no_create_uri)
        uri = no_create_uri(path)

        def open_without_creating(_dialect: Any, _record: Any, cargs: list, cparams: dict) -> None:
            cargs[:1] = [uri]
            cparams["uri"] = True

        event.listen(engine.sync_engine, "do_connect", open_without_creating)
        watch = FileWatch(path)
        event.listen(engine.sync_engine.pool, "checkout", lambda *_: watch.check())
    event.listen(engine.sync_engine, "handle_error", UnwritableErrors(watch).translate)
    return engine


def make_private(database: Path) -> None:
    """The data dir 0700 and the database file 0600, created so if absent, tightened if we own them.

    The file holds prompts, answers, ciphertexts and token hashes. SQLite gives the ``-wal`` and ``-shm``
    files it creates the mode of the database file, so making that one private is enough for all three;
    any left from an earlier run are tightened as well.
    """
    directory = database.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(directory, 0o700)
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))  # an empty file is an empty database
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        _tighten(path, 0o600)


def no_create_uri(database: Path) -> str:
    """The SQLite URI that opens ``database`` read-write and never creates it (open with ``uri=True``).

    A connection opened after the file was deleted would otherwise create an empty database in its place:
    the gateway would take it for its store (a probe "succeeds", every write fails for want of tables) and
    its file could even get the deleted one's inode number back, which hides the deletion from FileWatch.
    Opened this way, it fails ("unable to open database file") until the gateway is restarted.
    """
    return f"file:{quote(str(database))}?mode=rw"


def _tighten(path: Path, mode: int) -> None:
    try:
        found = path.stat()
        if found.st_uid == os.geteuid() and found.st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a read-only mount, say: the database works, only less private
        log.warning("could not make %s private (mode %o): %s", path, mode, exc.strerror)


class StoreUnwritable(GatewayError):
    """The database cannot keep what is written to it: its file was deleted or replaced while in use, or
    the disk is full or read-only. A write must fail loudly (503), never answer as if it were stored."""

    status = 503


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class FileWatch:
    """The database file this engine (or writer) opened, by identity. SQLite keeps writing to a file that
    was unlinked without an error: everything written then is lost when the process exits. ``check``
    raises StoreUnwritable from then on, and says it once in the operator's log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = file_identity(path)
        self._reported = False

    def problem(self) -> StoreUnwritable | None:
        """StoreUnwritable once the file was deleted or replaced (logged the first time), else None."""
        if self.opened is None or file_identity(self.path) == self.opened:
            return None
        error = StoreUnwritable(f"the database file {self.path} was deleted or replaced while the gateway was "
                                "using it; nothing can be stored until the gateway is restarted")
        if not self._reported:
            self._reported = True
            log.error("%s", error)
        return error

    def check(self) -> None:
        error = self.problem()
        if error is not None:
            raise error


# SQLite's words for a store that cannot take writes: the operator's problem, not the request's.
_UNWRITABLE = ("database or disk is full", "disk i/o error", "readonly database", "unable to open database")
# The same failure is said again at most this often: the catalog's poll and the readiness probe meet it
# twice a second while it lasts.
UNWRITABLE_REPEAT_S = 60.0


class UnwritableErrors:
    """Turns SQLite's errors for a store that cannot be written into StoreUnwritable (503), for one engine.

    A deleted database file fails every new connection with "unable to open database file"; that is told
    as the deletion it is (the file watch's words), not as a disk problem."""

    def __init__(self, watch: FileWatch | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._watch = watch
        self._clock = clock
        self._said: dict[str, float] = {}  # message → when it was last logged

    def translate(self, context: Any) -> Exception | None:
        """SQLAlchemy's handle_error hook: the exception to raise instead, or None to keep its own."""
        message = str(context.original_exception)
        if not any(words in message.lower() for words in _UNWRITABLE):
            return None
        deleted = self._watch.problem() if self._watch is not None else None
        if deleted is not None:
            return deleted
        now = self._clock()
        if now - self._said.get(message, -UNWRITABLE_REPEAT_S) >= UNWRITABLE_REPEAT_S:
            self._said[message] = now
            log.error("the database cannot be written: %s", message)
        return StoreUnwritable(f"the database cannot be written ({message}); see the gateway's log")


def store_outage(exc: BaseException) -> str | None:
    """A one-line reason when ``exc`` says the database cannot be reached or written (the operator's
    problem: 503), None for anything else. Never the URL: it may hold a password."""
    if isinstance(exc, (OSError, TimeoutError)):
        return f"the database cannot be reached ({type(exc).__name__})"
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated
                                        or isinstance(exc, (OperationalError, InterfaceError))
                                        or any(words in str(exc.orig) for words in _DAMAGED)):
        return f"the database cannot be used ({str(exc.orig).splitlines()[0][:200] if exc.orig else 'error'})"
    return None


# SQLite's words for a file that was damaged (cut short, overwritten) while the gateway runs on it: the
# operator's to restore, a 503 like an outage, not a 500 with the statement in the log.
_DAMAGED = ("database disk image is malformed", "file is not a database")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the server's readers run while a CLI process writes; NORMAL sync is durable enough under WAL
    # (a power cut may lose the last commit, never corrupt the file); foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def sqlite_file(engine: AsyncEngine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or an in-memory database)."""
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(os.path.abspath(engine.url.database))
