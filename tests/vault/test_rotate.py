from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sluicegate.catalog import Catalog, ProviderRepository
from sluicegate.settings import Settings
from sluicegate.store.periodic_reads import periodic_reads
from sluicegate.store.polling import VersionWatch
from sluicegate.vault import Vault, VaultError, encode_key, generate_key
from sluicegate.vault import rotate as rotation
from sluicegate.vault.keys import read_key_file, write_key_file

from ..catalog.helpers import API_KEY, SECRET, new_provider


async def add_providers(engine, vault, count: int = 3) -> None:
    repo = ProviderRepository(engine, vault)
    for i in range(count):
        await repo.add(new_provider(f"p{i}"))


async def test_rotate_key_file_while_a_server_runs(engine, settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(rotation, "BATCH_ROWS", 2)  # several batches, several version bumps
    server_vault = Vault.load(settings)
    await add_providers(engine, server_vault)
    old_id = server_vault.active_key_id
    server = Catalog(engine, server_vault)
    await server.start()
    watch = VersionWatch(periodic_reads(engine), 0.1)  # the server's reload loop
    watch.add(server.follower)
    watch.start()
    misses = 0

    async def traffic() -> None:
        nonlocal misses
        while True:
            misses += sum(server.resolve(f"p{i}") is None for i in range(3))
            await asyncio.sleep(0.005)

    load = asyncio.create_task(traffic())
    try:
        cli_vault = Vault.load(settings)
        lines: list[str] = []
        report = await rotation.rotate(engine, cli_vault, settle_s=0.3, say=lines.append)
        await asyncio.sleep(0.3)
    finally:
        load.cancel()
        await watch.stop()
    assert misses == 0  # no downtime: every lookup answered throughout
    assert report.reencrypted == 6 and report.retired_key_ids == (old_id,)
    assert report.active_key_id != old_id and server_vault.active_key_id == report.active_key_id
    assert await rotation.key_usage(engine) == {report.active_key_id: 6}
    assert [k.key_id for k in read_key_file(settings.data_dir / "master.key").keys] == [report.active_key_id]
    assert dict(server.resolve("p2").headers) == {"Authorization": SECRET, "x-api-key": API_KEY}
    fresh = Catalog(engine, Vault.load(settings))  # a restart with the rewritten file
    await fresh.start()
    assert fresh.resolve("p0").headers == server.resolve("p0").headers
    assert all(SECRET not in line for line in lines) and len(lines) == 3


async def test_rotate_resumes_after_a_crash(engine, settings: Settings) -> None:
    vault = Vault.load(settings)
    await add_providers(engine, vault)
    path = settings.data_dir / "master.key"
    crashed = generate_key()  # step 1 of an earlier run completed, nothing else
    write_key_file(path, (crashed,) + read_key_file(path).keys)
    report = await rotation.rotate(engine, Vault.load(settings), settle_s=0)
    assert len(report.retired_key_ids) == 2 and report.reencrypted == 6
    assert await rotation.key_usage(engine) == {report.active_key_id: 6}
    catalog = Catalog(engine, Vault.load(settings))
    await catalog.start()
    assert dict(catalog.resolve("p1").headers)["Authorization"] == SECRET


async def test_rotate_with_env_keys(engine, settings: Settings) -> None:
    old, new = generate_key(), generate_key()
    env = dataclasses.replace(settings, master_key=encode_key(old))
    await add_providers(engine, Vault.load(env))
    rotated = dataclasses.replace(settings, master_key=f"{encode_key(new)},{encode_key(old)}")
    report = await rotation.rotate(engine, Vault.load(rotated), settle_s=0)
    assert report.source == "SLUICEGATE_MASTER_KEY" and report.retired_key_ids == (old.key_id,)
    assert await rotation.key_usage(engine) == {new.key_id: 6}
    assert not (settings.data_dir / "master.key").exists()
    only_new = dataclasses.replace(settings, master_key=encode_key(new))
    catalog = Catalog(engine, Vault.load(only_new))
    await catalog.start()
    assert dict(catalog.resolve("p0").headers)["x-api-key"] == API_KEY


async def test_rotate_with_the_wrong_key_names_the_provider(engine, settings: Settings) -> None:
    await add_providers(engine, Vault.load(settings), count=1)
    wrong = dataclasses.replace(settings, master_key=encode_key(generate_key()))
    with pytest.raises(VaultError, match=r"provider @p0, header 'Authorization': sealed with master key"):
        await rotation.rotate(engine, Vault.load(wrong), settle_s=0)


async def test_rotate_empty_catalog(engine, settings: Settings) -> None:
    vault = Vault.load(settings)
    report = await rotation.rotate(engine, vault, settle_s=0)
    assert report.reencrypted == 0 and await rotation.key_usage(engine) == {}
    assert vault.active_key_id == report.active_key_id


async def test_rotate_reencrypts_integrations_too(engine, settings: Settings) -> None:
    """An integration's stored key (Portkey-style, catalog/integrations.py) survives a rotation that
    retires the key it was sealed with: a provider can still be made from it afterwards."""
    from sluicegate.catalog.integrations import IntegrationRepository

    vault = Vault.load(settings)
    made = await IntegrationRepository(engine, vault).create(
        {"ai_provider_id": "openai", "key": SECRET, "configurations": {"custom_host": "http://gpu.lan:8000/v1",
                                                                       "custom_headers": {"x-api-key": API_KEY}}},
        workspace_id=None)
    assert await rotation.key_usage(engine) == {vault.active_key_id: 1}
    report = await rotation.rotate(engine, vault, settle_s=0)
    assert report.retired_key_ids and report.reencrypted == 1
    after = Vault.load(settings)  # the rewritten key file: the old key is gone
    item = await IntegrationRepository(engine, after).provider_from(made["id"], "from-it", workspace_id="ws-default",
                                                                     notes="")
    assert dict(item.headers) == {"authorization": f"Bearer {SECRET}", "x-api-key": API_KEY}
    assert await rotation.key_usage(engine) == {report.active_key_id: 1}


async def test_a_rotation_that_fails_midway_is_rolled_back(engine, settings: Settings, monkeypatch) -> None:
    """A failure after the new key was written (here: the integrations' step, once the headers moved) puts
    every row back under the old key and the key file's old bytes back: no extra key is left behind."""
    vault = Vault.load(settings)
    await add_providers(engine, vault)
    old_id = vault.active_key_id
    path = settings.data_dir / "master.key"
    before = path.read_bytes()
    real, calls = rotation._reencrypt_integrations, []

    async def failing_once(engine, vault) -> int:
        calls.append(vault.active_key_id)
        if len(calls) == 1:
            raise VaultError("integration x changed during the rotation: run it again")
        return await real(engine, vault)

    monkeypatch.setattr(rotation, "_reencrypt_integrations", failing_once)
    lines: list[str] = []
    with pytest.raises(VaultError, match="changed during the rotation"):
        await rotation.rotate(engine, vault, settle_s=0, say=lines.append)
    assert calls[0] != old_id and calls[1] == old_id  # rotated forward, then back
    assert path.read_bytes() == before
    assert await rotation.key_usage(engine) == {old_id: 6} and vault.active_key_id == old_id
    assert lines[-1].startswith("rotation failed; ")
    catalog = Catalog(engine, Vault.load(settings))
    await catalog.start()
    assert dict(catalog.resolve("p0").headers)["Authorization"] == SECRET


async def test_nothing_is_sealed_beside_secrets_the_key_cannot_open(engine, settings: Settings) -> None:
    """Provider headers and integrations alike (vault/guard.py), whatever surface calls them."""
    from sluicegate.catalog.entries import ProviderPatch
    from sluicegate.catalog.integrations import IntegrationRepository
    from sluicegate.vault.guard import LostKeys

    right = Vault.load(settings)
    await add_providers(engine, right, count=1)
    wrong = Vault.load(dataclasses.replace(settings, master_key=encode_key(generate_key())))
    with pytest.raises(LostKeys, match=right.active_key_id):
        await ProviderRepository(engine, wrong).add(new_provider("p9"))
    with pytest.raises(LostKeys):
        await ProviderRepository(engine, wrong).update("p0", ProviderPatch(headers=(("X-New", "value-0123"),)))
    with pytest.raises(LostKeys):
        await IntegrationRepository(engine, wrong).create({"ai_provider_id": "openai", "key": SECRET},
                                                          workspace_id=None)
    assert await rotation.key_usage(engine) == {right.active_key_id: 2}
    assert await ProviderRepository(engine, right).slugs() == frozenset({"p0"})
    assert await IntegrationRepository(engine, right).list() == []
