"""The database never holds a secret in clear: grep the SQLite files and a pg_dump for it."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest

from sluicegate.catalog import Catalog, ConfigRepository, ProviderPatch, ProviderRepository
from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.vault import Vault

from ..catalog.helpers import API_KEY, SECRET, new_provider
from ..pg import PgServer

ROTATED = "Bearer sk-live-PLAINTEXT-rotated-99887766"
NEEDLES = [s.encode() for s in (SECRET, API_KEY, ROTATED, "PLAINTEXT", SECRET.split()[1])]


async def exercise(settings: Settings) -> None:
    """Every write path a secret takes: add, update in place, add another header, rotate, delete."""
    from sluicegate.vault.rotate import rotate

    engine = create_engine(settings)
    try:
        await upgrade(engine)
        vault = Vault.load(settings)
        repo = ProviderRepository(engine, vault)
        await repo.add(new_provider("my-llm"))
        await repo.add(new_provider("doomed"))
        await repo.update("my-llm", ProviderPatch(headers=(("Authorization", ROTATED), ("X-Extra", API_KEY))))
        await ConfigRepository(engine).add("cfg", '{"provider": "@my-llm"}')
        await rotate(engine, vault, settle_s=0)
        await repo.remove("doomed")
        catalog = Catalog(engine, Vault.load(settings))
        await catalog.start()
        assert dict(catalog.resolve("my-llm").headers)["Authorization"] == ROTATED  # the data is really there
    finally:
        await engine.dispose()


async def test_sqlite_files_hold_no_plaintext(sqlite_settings: Settings, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        await exercise(sqlite_settings)
    files = sorted(p for p in sqlite_settings.data_dir.iterdir() if p.name.startswith("sluicegate.db"))
    assert files and files[0].name == "sluicegate.db"
    blob = b"".join(p.read_bytes() for p in files)
    assert b"my-llm" in blob and b"sg1:" in blob  # sanity: we are looking at the real data
    for needle in NEEDLES:
        assert needle not in blob, f"{needle!r} found in clear in the SQLite files"
    assert not any(needle.decode() in caplog.text for needle in NEEDLES)


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed")
async def test_pg_dump_holds_no_plaintext(pg_server: PgServer, pg_url: str, tmp_path, caplog) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    with caplog.at_level(logging.DEBUG):
        await exercise(settings)
    dump = subprocess.run(
        ["pg_dump", "--no-owner", *pg_server.libpq_args(pg_url)], capture_output=True, check=True, timeout=60
    ).stdout
    assert b"my-llm" in dump and b"sg1:" in dump
    for needle in NEEDLES:
        assert needle not in dump, f"{needle!r} found in clear in pg_dump"
    assert not any(needle.decode() in caplog.text for needle in NEEDLES)
