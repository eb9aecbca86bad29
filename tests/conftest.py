"""Shared fixtures: a data dir and a migrated store on SQLite and on PostgreSQL (``settings``/``engine`` are
parametrised over both dialects; ask for ``sqlite_settings`` or ``pg_settings`` to pin one)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.store.tables import metadata
from sluicegate.vault import Vault
from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi
from tests.pg import PgServer, pg_server_or_skip


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules (setup.py) older than their sources: the edit would not be tested."""
    stale = stale_compiled_modules(Path(__file__).resolve().parent.parent / "src" / "sluicegate")
    if stale:
        pytest.exit(f"compiled modules are older than their sources ({', '.join(stale)}): run `make install` to "
                    "compile them again, or `SLUICEGATE_COMPILE=0 make install` to run pure Python", returncode=4)


def stale_compiled_modules(package: Path) -> list[str]:
    """The sources (relative to ``package``) changed since their extension module was built beside them."""
    stale = []
    for extension in package.rglob("*.so"):
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(str(source.relative_to(package)))
    return sorted(stale)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = pg_server_or_skip()
    yield server
    server.drop_all()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database of its own (for migration and process-level tests)."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(scope="session")
def pg_shared_url(pg_server: PgServer) -> str:
    """One migrated database for the whole run; ``pg_clean_url`` empties it before each test (much faster
    than a database per test). Dropped with the rest of the run's databases at the end."""
    url = pg_server.create_database()
    asyncio.run(upgrade(url))
    return url


@pytest.fixture
def pg_clean_url(pg_server: PgServer, pg_shared_url: str) -> str:
    # DELETE, not TRUNCATE: on tables this small it is several times faster (no new files, no fsync).
    deletes = [f"DELETE FROM {t.name}" for t in reversed(metadata.sorted_tables)
               if t.name not in ("catalog_state", "workspaces")]
    deletes.append("DELETE FROM workspaces WHERE id <> 'ws-default'")  # the default one exists from the start
    pg_server.run_on(pg_shared_url, *deletes, "UPDATE catalog_state SET version = 0")
    return pg_shared_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, built once and copied per test (migrating costs ~0.2 s, a copy ~1 ms)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("sqlite-template"))
    asyncio.run(upgrade(f"sqlite:///{settings.sqlite_path}"))  # disposing checkpoints the WAL into the file
    return settings.sqlite_path


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(mode=0o700)
    shutil.copyfile(sqlite_template, settings.sqlite_path)
    return settings


@pytest.fixture
def sqlite_empty_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def pg_settings(tmp_path: Path, pg_clean_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=pg_clean_url)


@pytest.fixture
def pg_empty_settings(tmp_path: Path, pg_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=pg_url)


DIALECTS = ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def settings(request: pytest.FixtureRequest) -> Settings:
    """A migrated, empty store on each dialect, with its own data dir (master key file)."""
    return request.getfixturevalue(f"{request.param}_settings")


@pytest.fixture(params=DIALECTS)
def empty_settings(request: pytest.FixtureRequest) -> Settings:
    """A database with no schema at all, on each dialect."""
    return request.getfixturevalue(f"{request.param}_empty_settings")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator:
    engine = create_engine(settings)
    await upgrade(engine)  # already migrated: a quick no-op, kept so a new migration is always applied
    yield engine
    await engine.dispose()


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return Vault.load(settings)


@pytest.fixture(scope="session")
def upstream_server():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server):
    """The session's fake upstream, with an empty script and no recorded requests."""
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """One real gateway process for the session, on a free loopback port, with default settings."""
    process = GatewayProcess(tmp_path_factory.mktemp("gateway")).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def logged_gateway(tmp_path_factory):
    """A gateway process with a known admin token, for tests that read its request log back."""
    process = GatewayProcess(tmp_path_factory.mktemp("logged-gateway"),
                             env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def log_api(logged_gateway) -> LogApi:
    return LogApi(logged_gateway.url)
