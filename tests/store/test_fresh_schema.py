"""An empty database is created from the tables (store/fresh.py), not migrated: the two must never differ.

Each test builds one database through Alembic's eight migrations and one through the fresh path, on the same
dialect, and compares everything the inspector sees (tables, columns with their types, nullability, defaults;
primary keys, foreign keys, unique and check constraints, indexes; PostgreSQL's sequences), the rows the
migrations seed, and the recorded revision.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from sluicegate.settings import Settings
from sluicegate.store import create_engine, current_revision, head_revision, upgrade
from sluicegate.store.tables import metadata


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        columns = {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")), c.get("autoincrement"))
                   for c in inspector.get_columns(name)}
        foreign = sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                          tuple(fk["referred_columns"]), tuple(sorted(fk.get("options", {}).items())))
                         for fk in inspector.get_foreign_keys(name))
        indexes = sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                         for ix in inspector.get_indexes(name))
        uniques = sorted((uq["name"], tuple(uq["column_names"])) for uq in inspector.get_unique_constraints(name))
        checks = sorted((ck["name"], ck["sqltext"]) for ck in inspector.get_check_constraints(name))
        pk = inspector.get_pk_constraint(name)
        tables[name] = {"columns": columns, "pk": (pk.get("name"), tuple(pk["constrained_columns"])),
                        "foreign_keys": foreign, "indexes": indexes, "uniques": uniques, "checks": checks}
    sequences = sorted(inspector.get_sequence_names()) if connection.dialect.name == "postgresql" else []
    return {"tables": tables, "sequences": sequences}


def _rows(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, timestamps masked (the default workspace is stamped when it is made)."""
    def masked(row: Any) -> tuple[Any, ...]:
        return tuple("<time>" if isinstance(value, datetime) else value for value in row)

    return {table.name: sorted(masked(row) for row in connection.execute(select(table)))
            for table in metadata.sorted_tables}


async def _described(settings: Settings, revision: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    engine = create_engine(settings)
    try:
        await upgrade(engine, revision)
        async with engine.connect() as conn:
            schema = await conn.run_sync(_schema)
            rows = await conn.run_sync(_rows)
        return schema, rows, await current_revision(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> tuple[Settings, Settings]:
    return Settings(data_dir=tmp_path / "migrated"), Settings(data_dir=tmp_path / "created")


@pytest.fixture
def pg_pair(tmp_path: Path, pg_server) -> Iterator[tuple[Settings, Settings]]:
    urls = [pg_server.create_database(), pg_server.create_database()]
    yield (Settings(data_dir=tmp_path / "migrated", database_url=urls[0]),
           Settings(data_dir=tmp_path / "created", database_url=urls[1]))
    for url in urls:
        pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest) -> tuple[Settings, Settings]:
    return request.getfixturevalue(f"{request.param}_pair")


async def test_a_created_store_equals_a_migrated_one(pair: tuple[Settings, Settings]) -> None:
    migrated_settings, created_settings = pair
    head = head_revision()
    migrated = await _described(migrated_settings, head)  # a revision named explicitly: Alembic's migrations
    created = await _described(created_settings, "head")  # an empty database at "head": created
    assert migrated[2] == created[2] == head
    assert created[0] == migrated[0]
    assert created[1] == migrated[1]
    assert {"providers", "workspaces", "request_logs", "limit_settings", "alembic_version"} <= set(created[0]["tables"])
    assert created[1]["catalog_state"] == [(1, 0), (2, 0), (3, 0)]


async def test_a_store_with_tables_is_never_created_over(empty_settings: Settings) -> None:
    """Only a database with no table at all is created; one at an older revision is migrated from there
    (its rows kept), and one holding someone else's table goes through Alembic, which refuses nothing it
    does not own."""
    engine = create_engine(empty_settings)
    try:
        await upgrade(engine, "0005_log_filter_indexes")
        async with engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE catalog_state SET version = 7 WHERE id = 1")
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            versions = (await conn.exec_driver_sql("SELECT id, version FROM catalog_state ORDER BY id")).all()
        assert [tuple(row) for row in versions] == [(1, 7), (2, 0), (3, 0)]
    finally:
        await engine.dispose()


async def test_a_database_holding_another_table_is_migrated_not_created(empty_settings: Settings) -> None:
    engine = create_engine(empty_settings)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            schema = await conn.run_sync(_schema)
        assert "someone_elses" in schema["tables"]
    finally:
        await engine.dispose()


async def test_a_creation_that_fails_half_way_leaves_an_empty_database(empty_settings: Settings,
                                                                      monkeypatch) -> None:
    from sluicegate.store import fresh

    def crash():
        raise OSError("the process died here")

    engine = create_engine(empty_settings)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(fresh, "utcnow", crash)  # after the tables and the first rows, before the stamp
            with pytest.raises(OSError):
                await upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.run_sync(_schema))["tables"] == {}
        await upgrade(engine)  # the next start creates it whole
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_a_fresh_store_is_created_without_importing_alembic(tmp_path: Path) -> None:
    """Three starts racing for one empty store (workers, replicas): one creates it, the others find it at
    the head once they hold the lock, and none of them needs Alembic."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from sluicegate.settings import Settings\n"
        "from sluicegate.store import create_engine, current_revision, upgrade\n"
        "async def main():\n"
        f"    engines = [create_engine(Settings(data_dir=Path({str(tmp_path)!r}))) for _ in range(3)]\n"
        "    await asyncio.gather(*(upgrade(engine) for engine in engines))\n"
        "    print('alembic' in sys.modules)\n"
        "    print(await current_revision(engines[0]))\n"
        "    for engine in engines:\n"
        "        await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.split()) == (0, ["False", head_revision()]), done.stderr
