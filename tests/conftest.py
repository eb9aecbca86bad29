"""Shared fixtures: a data dir and a migrated store on SQLite and on PostgreSQL (``settings``/``engine`` are
parametrised over both dialects; ask for ``sqlite_settings`` or ``pg_settings`` to pin one)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.vault import Vault

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
