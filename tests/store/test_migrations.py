from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from sluicegate.settings import Settings
from sluicegate.store import create_engine, current_revision, head_revision, upgrade
from sluicegate.store.migrate import packaged_head
from sluicegate.store.tables import catalog_state, metadata


async def test_upgrade_creates_schema_and_is_idempotent(empty_settings: Settings) -> None:
    engine = create_engine(empty_settings)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        await upgrade(engine)  # a second start changes nothing
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert (await conn.execute(select(catalog_state))).all() == [(1, 0), (2, 0), (3, 0)]  # catalog, access, limits
    finally:
        await engine.dispose()


async def test_migrations_match_tables_py(empty_settings: Settings) -> None:
    """tables.py and the migrations must describe the same schema on both dialects (an empty database at
    "head" is created from tables.py: the migrations are run by naming the head revision)."""

    def diff(sync_conn):
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    engine = create_engine(empty_settings)
    try:
        await upgrade(engine, head_revision())
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert {"providers", "provider_headers", "saved_configs", "admin_tokens", "catalog_state"} <= names


async def test_concurrent_upgrades_serialise(empty_settings: Settings) -> None:
    """Workers and a CLI may start together: every one must succeed, the schema built exactly once."""
    engines = [create_engine(empty_settings) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for e in engines:
            await e.dispose()


async def test_upgrade_accepts_a_url(empty_settings: Settings) -> None:
    url = empty_settings.database_url or f"sqlite:///{empty_settings.sqlite_path}"
    empty_settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    engine = create_engine(empty_settings)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("revision", ["base"])
async def test_downgrade_to_base_and_back(engine, revision: str) -> None:
    from alembic import command

    from sluicegate.store.migrate import alembic_config

    def down(sync_conn):
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(down)
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    assert packaged_head() == head_revision()


async def test_a_store_one_revision_behind_is_migrated(empty_settings: Settings) -> None:
    """The quick at-head check must never stand in for a migration that is due."""
    engine = create_engine(empty_settings)
    try:
        await upgrade(engine, "0005_log_filter_indexes")
        assert await current_revision(engine) == "0005_log_filter_indexes"
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_a_store_at_head_opens_without_importing_alembic(tmp_path) -> None:
    """Start-up on a migrated store reads its version row and moves on; Alembic is imported to migrate only
    (the first run names the head revision, so it migrates through Alembic)."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from sluicegate.settings import Settings\n"
        "from sluicegate.store import create_engine, upgrade\n"
        "async def main():\n"
        f"    engine = create_engine(Settings(data_dir=Path({str(tmp_path)!r})))\n"
        "    await upgrade(engine, sys.argv[1])\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", script, head_revision()], capture_output=True, text=True,
                           timeout=120)
    second = subprocess.run([sys.executable, "-c", script, "head"], capture_output=True, text=True, timeout=120)
    assert (first.returncode, first.stdout.strip()) == (0, "True"), first.stderr  # a fresh store: migrated
    assert (second.returncode, second.stdout.strip()) == (0, "False"), second.stderr


async def test_a_store_at_a_revision_this_package_does_not_ship_is_named_as_such(empty_settings: Settings) -> None:
    """A newer sluicegate's database, opened by an older one: Alembic's CommandError was a traceback at start."""
    from sqlalchemy import text

    from sluicegate.store import StoreConfigError

    engine = create_engine(empty_settings)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'fffffffffff0'"))
        with pytest.raises(StoreConfigError, match="was it written by a newer sluicegate"):
            await upgrade(engine)
    finally:
        await engine.dispose()
