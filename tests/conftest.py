"""Shared fixtures: a data dir and a migrated store on SQLite and on PostgreSQL (``settings``/``engine`` are
parametrised over both dialects; ask for ``sqlite_settings`` or ``pg_settings`` to pin one)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.vault import Vault

from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess

from .pg import PgServer, pg_server_or_skip


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = pg_server_or_skip()
    yield server
    server.drop_all()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=pg_url)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    return request.getfixturevalue(f"{request.param}_settings")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator:
    engine = create_engine(settings)
    await upgrade(engine)
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
