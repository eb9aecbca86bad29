from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from sluicegate.catalog import Catalog, CatalogKeyError, ConfigRepository, ProviderPatch, ProviderRepository
from sluicegate.errors import BadRequest
from sluicegate.settings import Settings
from sluicegate.store import create_engine
from sluicegate.store.periodic_reads import periodic_reads
from sluicegate.store.polling import VersionWatch
from sluicegate.store.tables import provider_headers, saved_configs
from sluicegate.vault import Vault, encode_key, generate_key

from .helpers import API_KEY, HOST, SECRET, new_provider


@pytest.fixture
def watch(engine):
    """The reload loop a server runs (app.py), at the SQLite default interval."""
    return VersionWatch(periodic_reads(engine), 0.5)


@pytest.fixture
async def catalog(engine, vault, watch: VersionWatch):
    catalog = Catalog(engine, vault)
    watch.add(catalog.follower)
    watch.start()
    yield catalog
    await watch.stop()


async def wait_for(predicate, timeout: float = 1.0) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_start_loads_everything(engine, vault, catalog: Catalog) -> None:
    await ProviderRepository(engine, vault).add(
        new_provider(models=["m"], default_model="m", forward_headers=["x-org"], allow_entry="10.0.0.5")
    )
    await ConfigRepository(engine).add("cfg", '{"provider": "@my-llm"}')
    await catalog.start()
    found = catalog.resolve("my-llm")
    assert found is not None and catalog.resolve("@my-llm") is found
    assert found.headers == (("Authorization", SECRET), ("x-api-key", API_KEY))
    assert (found.spec, found.custom_host, found.models, found.default_model) == ("openai", HOST, ("m",), "m")
    assert found.forward_headers == ("x-org",) and found.allow_entry == "10.0.0.5"
    assert catalog.saved_config("cfg") == '{"provider": "@my-llm"}'
    assert catalog.saved_config("nope") is None and catalog.resolve("nope") is None
    assert catalog.slugs() == frozenset({"my-llm"})
    assert catalog.snapshot.allow_entries == ("10.0.0.5",)
    with pytest.raises(BadRequest, match="^Provider @ghost not found in the catalog$"):
        catalog.require("@ghost")


async def test_change_by_another_process_is_seen_within_a_second(
    settings: Settings, catalog: Catalog
) -> None:
    await catalog.start()
    cli_engine = create_engine(settings)  # a second engine and vault: what `sluicegate providers add` uses
    try:
        cli = ProviderRepository(cli_engine, Vault.load(settings))
        await cli.add(new_provider("late"))
        assert await wait_for(lambda: catalog.resolve("late") is not None) < 1.0
        await cli.update("late", ProviderPatch(headers=(("x-api-key", "xk-new-value-1234567890"),)))
        await wait_for(
            lambda: dict(catalog.resolve("late").headers)["x-api-key"] == "xk-new-value-1234567890"
        )
        await cli.remove("late")
        await wait_for(lambda: catalog.resolve("late") is None)
    finally:
        await cli_engine.dispose()


async def test_lookups_never_touch_the_database(engine, vault, catalog: Catalog, watch: VersionWatch) -> None:
    await ProviderRepository(engine, vault).add(new_provider())
    await catalog.start()
    await watch.stop()
    await engine.dispose()  # no connection left at all
    assert catalog.resolve("my-llm") is not None


async def test_listeners(engine, vault, catalog: Catalog) -> None:
    seen: list[tuple[str, ...]] = []
    catalog.on_change(lambda snap: seen.append(snap.allow_entries))
    catalog.on_change(lambda snap: 1 / 0)  # a broken listener is logged, the others still run
    await catalog.start()
    await ProviderRepository(engine, vault).add(new_provider(allow_entry="gpu.lan"))
    assert await catalog.refresh() is True
    assert await catalog.refresh() is False  # nothing changed
    late: list[int] = []
    catalog.on_change(lambda snap: late.append(snap.version))  # called at once with the current state
    assert seen == [(), ("gpu.lan",)] and late == [catalog.version]


async def test_wrong_master_key_is_a_startup_error_naming_providers(engine, vault) -> None:
    repo = ProviderRepository(engine, vault)
    await repo.add(new_provider("alpha"))
    await repo.add(new_provider("beta"))
    await repo.add(new_provider("no-secrets", headers=[]))
    wrong = Vault.load(Settings(master_key=encode_key(generate_key())))
    with pytest.raises(CatalogKeyError) as caught:
        await Catalog(engine, wrong).start()
    message = str(caught.value)
    assert "2 provider(s): @alpha: header 'Authorization': sealed with master key" in message
    assert vault.active_key_id in message and "@beta" in message and "no-secrets" not in message
    assert set(caught.value.failures) == {"alpha", "beta"}


async def test_tampered_ciphertext_is_a_startup_error(engine, vault) -> None:
    await ProviderRepository(engine, vault).add(new_provider("alpha"))
    await ProviderRepository(engine, vault).add(new_provider("beta"))
    await _tamper(engine, "x-api-key")
    with pytest.raises(
        CatalogKeyError, match=r"@alpha: header 'x-api-key': ciphertext failed authentication"
    ):
        await Catalog(engine, vault).start()


async def test_running_catalog_keeps_last_good_entry(engine, vault, catalog, caplog) -> None:
    await ProviderRepository(engine, vault).add(new_provider("alpha"))
    await catalog.start()
    before = catalog.resolve("alpha")
    await _tamper(engine, "Authorization")
    with caplog.at_level(logging.ERROR, logger="sluicegate.catalog"):
        await catalog.refresh()
    assert catalog.resolve("alpha") is before
    assert "@alpha: header 'Authorization'" in caplog.text
    assert SECRET not in caplog.text and "sk-live" not in caplog.text


async def test_poll_survives_store_errors(engine, vault, monkeypatch, caplog) -> None:
    reads = periodic_reads(engine)
    real = reads.versions
    calls = {"n": 0}

    async def flaky():
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionError("database went away")
        return await real()

    catalog = Catalog(engine, vault)
    watch = VersionWatch(reads, 0.05)  # poll fast
    watch.add(catalog.follower)
    await catalog.start()
    monkeypatch.setattr(reads, "versions", flaky)
    watch.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sluicegate.catalog"):
            await wait_for(lambda: calls["n"] > 3)
            await ProviderRepository(engine, vault).add(new_provider("after"))
            await wait_for(lambda: catalog.resolve("after") is not None)
    finally:
        await watch.stop()
    assert caplog.text.count("catalog reload failed") == 1  # logged once, not every poll
    assert "works again" in caplog.text


async def _tamper(engine, header: str) -> None:
    async with engine.begin() as conn:
        token = await conn.scalar(
            select(provider_headers.c.ciphertext).where(provider_headers.c.name == header)
        )
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        await conn.execute(
            update(provider_headers).where(provider_headers.c.name == header).values(ciphertext=flipped)
        )


async def test_allow_entries_reach_the_guard(engine, vault, catalog: Catalog) -> None:
    """The hookup the composition root makes: catalog allow entries feed Guard.set_extra_allows."""
    from sluicegate.errors import InvalidCustomHost
    from sluicegate.upstream.guard import Guard, GuardPolicy

    guard = Guard(GuardPolicy.build(listen_host="0.0.0.0"))
    catalog.on_change(lambda snap: guard.set_extra_allows(snap.allow_entries))
    await catalog.start()
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.5:8000/v1")
    repo = ProviderRepository(engine, vault, check_host=guard.check_url)
    await repo.add(new_provider("gpu", custom_host="http://10.0.0.5:8000/v1", allow_entry="10.0.0.5:8000"))
    await catalog.refresh()
    guard.check_url(catalog.require("@gpu").custom_host)  # allowed now
    await repo.remove("gpu")
    await catalog.refresh()
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.5:8000/v1")


def test_every_catalog_spec_is_a_registry_spec() -> None:
    from sluicegate.catalog import SPECS
    from sluicegate.providers import registry

    assert all(spec in registry.SPECS for spec in SPECS)


async def test_a_saved_config_holding_a_credential_in_clear_is_named_once(engine, vault, catalog, caplog) -> None:
    """Configs saved with a camelCase apiKey before either spelling was refused keep it in clear: the operator
    is told which and where, once, never the value."""
    await ConfigRepository(engine).add("clean", '{"provider": "openai"}')
    async with engine.begin() as conn:  # as an older version stored it
        await conn.execute(saved_configs.insert().values(
            id="old", text='{"targets": [{"provider": "openai", "apiKey": "sk-old-secret-77"}]}', notes="",
            workspace_id="ws-default", created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
    with caplog.at_level(logging.WARNING, logger="sluicegate.catalog"):
        await catalog.start()
        await catalog.refresh()
    said = [r.getMessage() for r in caplog.records if "in clear" in r.getMessage()]
    assert len(said) == 1 and "saved config old holds a credential in clear at config.targets[0].apiKey" in said[0]
    assert "sk-old-secret-77" not in caplog.text and catalog.saved_config("old") is not None  # still served
