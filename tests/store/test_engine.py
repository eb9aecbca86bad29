from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from sluicegate.settings import Settings
from sluicegate.store import StoreConfigError, create_engine, database_url


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


@pytest.mark.postgres
async def test_postgres_engine_connects(pg_settings: Settings) -> None:
    engine = create_engine(pg_settings)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert engine.dialect.driver == "asyncpg"
    finally:
        await engine.dispose()
