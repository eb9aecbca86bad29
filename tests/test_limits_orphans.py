"""A subject's usage limits go with it: deleting a workspace or a catalog provider deletes its limits and its
saved budget usage in the same transaction; a revoked (Portkey-"deleted") API key keeps them; a listing never
shows a subject that is gone; migration 0010 removes what deletions left before. On both dialects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.access.keys import KeyRepository
from sluicegate.access.secrets import KeyHasher
from sluicegate.access.workspaces import WorkspaceRepository
from sluicegate.catalog import ProviderRepository
from sluicegate.errors import Conflict
from sluicegate.limits.memory import MemoryCounters
from sluicegate.limits.registry import LimitRegistry
from sluicegate.limits.store import LimitRepository, read_limits_version
from sluicegate.serve import prepare_store
from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.store.limit_tables import limit_settings, limit_usage
from sluicegate.store.tables import providers, utcnow
from sluicegate.vault import Vault
from tests.catalog.helpers import new_provider

LIMITS = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}],
          "usage_limits": {"type": "tokens", "credit_limit": 1000, "periodic_reset": None, "alert_threshold": None}}
NONE = {"rate_limits": [], "usage_limits": None}


async def _stored(engine: AsyncEngine) -> tuple[set[tuple[str, str]], set[str]]:
    async with engine.connect() as conn:
        settings = {(r.subject_kind, r.subject_id) for r in await conn.execute(select(limit_settings))}
        usage = set((await conn.execute(select(limit_usage.c.counter))).scalars())
    return settings, usage


async def _orphan(engine: AsyncEngine, kind: str, subject_id: str) -> None:
    """Limits and usage left by a deletion before the fix (nothing reaches them through the API any more)."""
    async with engine.begin() as conn:
        await conn.execute(insert(limit_settings).values(subject_kind=kind, subject_id=subject_id, updated_at=utcnow(),
                                                         rate_limits=LIMITS["rate_limits"]))
        await conn.execute(insert(limit_usage).values(counter=f"{kind}:{subject_id}:bu:tokens", period=0, used=9.0))


async def test_deleting_a_workspace_deletes_its_limits_and_usage(engine: AsyncEngine) -> None:
    limits = LimitRepository(engine)
    workspaces = WorkspaceRepository(engine)
    gone = (await workspaces.create({"name": "Gone"}, actor="t"))["id"]
    kept = (await workspaces.create({"name": "Kept"}, actor="t"))["id"]
    for workspace in (gone, kept):
        await limits.set("workspace", workspace, LIMITS)
    await limits.save_usage({f"workspace:{gone}:bu:tokens": (0, 40.0, None),
                             f"workspace:{kept}:bu:tokens": (0, 7.0, None)})
    async with engine.connect() as conn:
        before = await read_limits_version(conn)
    await workspaces.remove(gone, actor="t")
    assert await _stored(engine) == ({("workspace", kept)}, {f"workspace:{kept}:bu:tokens"})
    async with engine.connect() as conn:
        assert await read_limits_version(conn) > before  # running servers reload (and forget its usage)


async def test_deleting_a_provider_deletes_its_limits_so_a_new_one_of_that_slug_starts_clean(
        engine: AsyncEngine, vault: Vault) -> None:
    limits = LimitRepository(engine)
    catalog = ProviderRepository(engine, vault)
    await catalog.add(new_provider("gpu"))
    await limits.set("provider", "gpu", {**LIMITS, "prices": {"*": {"input": 1, "output": 2}}})
    await limits.save_usage({"provider:gpu:bu:tokens": (0, 900.0, None)})
    await catalog.remove("gpu")
    assert await _stored(engine) == (set(), set())
    await catalog.add(new_provider("gpu"))  # the slug taken again: none of the old provider's limits bind it
    assert await limits.get("provider", "gpu") == {**NONE, "prices": {}}
    _, rows = await limits.all()
    assert rows == []


async def test_a_failed_deletion_deletes_no_limits(engine: AsyncEngine, vault: Vault) -> None:
    """Same transaction: a workspace that cannot be deleted (it still has a provider) keeps its limits."""
    limits = LimitRepository(engine)
    workspace = (await WorkspaceRepository(engine).create({"name": "Busy"}, actor="t"))["id"]
    await ProviderRepository(engine, vault).add(replace(new_provider("busy-gpu"), workspace_id=workspace))
    await limits.set("workspace", workspace, LIMITS)
    with pytest.raises(Conflict, match="still has 1 providers"):
        await WorkspaceRepository(engine).remove(workspace, actor="t")
    assert await limits.get("workspace", workspace) == LIMITS


async def test_a_revoked_key_keeps_its_limits(engine: AsyncEngine, settings: Settings) -> None:
    """Portkey's DELETE of a key revokes it: the row stays (the log names it, and it can be set active again),
    so its limits stay, listed and reachable."""
    keys = KeyRepository(engine, KeyHasher.load(settings))
    view, _ = await keys.create({"name": "k", "workspace_id": "default"}, actor="t")
    limits = LimitRepository(engine)
    await limits.set("key", view["id"], LIMITS)
    await keys.delete(view["id"], actor="t")
    assert (await keys.get(view["id"]))["status"] == "revoked"
    assert await limits.get("key", view["id"]) == LIMITS
    _, rows = await limits.all()
    assert [(r.subject_kind, r.subject_id) for r in rows] == [("key", view["id"])]


async def test_a_listing_never_shows_a_subject_that_is_gone(engine: AsyncEngine, vault: Vault) -> None:
    await ProviderRepository(engine, vault).add(new_provider("live"))
    limits = LimitRepository(engine)
    await limits.set("provider", "live", LIMITS)
    for kind, subject_id in (("key", "no-such-key"), ("workspace", "ws-gone"), ("provider", "gone")):
        await _orphan(engine, kind, subject_id)
    _, rows = await limits.all()
    assert [(r.subject_kind, r.subject_id) for r in rows] == [("provider", "live")]


async def test_a_running_server_forgets_a_deleted_subjects_usage_instead_of_saving_it_back(
        engine: AsyncEngine, vault: Vault) -> None:
    """Without Redis the server's memory holds budget usage and saves it every 2 s: a provider deleted (by the
    CLI, another server) must not come back as a usage row at the next save, nor at shutdown."""
    catalog = ProviderRepository(engine, vault)
    for slug in ("gpu", "cpu"):
        await catalog.add(new_provider(slug))
        await LimitRepository(engine).set("provider", slug, LIMITS)
    memory = MemoryCounters()
    registry = LimitRegistry(LimitRepository(engine), memory)
    await registry.start()
    try:
        memory.restore({"provider:gpu:bu:tokens": (0, 900.0, None), "provider:cpu:bu:tokens": (0, 5.0, None)})
        await registry.flush()
        await catalog.remove("gpu")
        async with engine.connect() as conn:
            await registry.follow(await read_limits_version(conn))  # what the reload loop does on the bump
    finally:
        await registry.stop()  # saves whatever the memory holds
    assert await _stored(engine) == ({("provider", "cpu")}, {"provider:cpu:bu:tokens"})
    assert set(memory.budgets()) == {"provider:cpu:bu:tokens"}


async def test_usage_saved_for_a_deleted_subject_is_not_restored(engine: AsyncEngine) -> None:
    await _orphan(engine, "provider", "gone")
    memory = MemoryCounters()
    registry = LimitRegistry(LimitRepository(engine), memory)
    await registry.start()
    await registry.stop()
    assert memory.budgets() == {}
    assert (await _stored(engine))[1] == set()


async def test_a_deleted_workspaces_limits_never_stop_workers_from_starting(settings: Settings) -> None:
    """`serve --workers 2` without Redis refuses to start while limits are defined: limits of subjects that no
    longer exist are not defined for anyone."""
    engine = create_engine(settings)
    try:
        await _orphan(engine, "workspace", "ws-gone")
    finally:
        await engine.dispose()
    await prepare_store(replace(settings, workers=2, redis_url=None))


async def test_migration_0010_removes_what_deletions_left(empty_settings: Settings) -> None:
    engine = create_engine(empty_settings)
    try:
        await upgrade(engine, "0009_dashboard_sessions")
        hasher = KeyHasher(b"k" * 32)
        key, _ = await KeyRepository(engine, hasher).create({"name": "k", "workspace_id": "default"}, actor="t")
        revoked, _ = await KeyRepository(engine, hasher).create({"name": "r", "workspace_id": "default"}, actor="t")
        await KeyRepository(engine, hasher).revoke(revoked["id"], actor="t")
        async with engine.begin() as conn:
            await conn.execute(_provider_row("live"))
        live = {("key", key["id"]), ("key", revoked["id"]), ("workspace", "ws-default"), ("provider", "live")}
        for kind, subject_id in live | {("key", "ak-gone"), ("workspace", "ws-gone"), ("provider", "gone")}:
            await _orphan(engine, kind, subject_id)  # every subject gets limits and usage; some subjects are gone
        async with engine.begin() as conn:
            await conn.execute(insert(limit_usage).values(counter="provider:gone:bu:cost", period=0, used=1.0))
        async with engine.connect() as conn:
            before = await read_limits_version(conn)
        await upgrade(engine)
        settings, usage = await _stored(engine)
        assert settings == live
        assert usage == {f"{kind}:{subject_id}:bu:tokens" for kind, subject_id in live}
        async with engine.connect() as conn:
            assert await read_limits_version(conn) == before + 1
        await upgrade(engine)  # at the head: nothing more happens
    finally:
        await engine.dispose()


def _provider_row(slug: str) -> Any:
    now = utcnow()
    return insert(providers).values(slug=slug, spec="openai", custom_host="http://127.0.0.1:9/v1", models=[],
                                    forward_headers=[], notes="", created_at=now, updated_at=now)
