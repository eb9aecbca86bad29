"""Migration 0003: rows written before workspaces existed belong to the default workspace afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text

from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.store.access_tables import DEFAULT_WORKSPACE_ID, workspaces
from sluicegate.store.request_logs import request_logs
from sluicegate.store.tables import providers, saved_configs


async def test_existing_catalog_rows_join_the_default_workspace(empty_settings: Settings) -> None:
    engine = create_engine(empty_settings)
    now = datetime.now(UTC)
    try:
        await upgrade(engine, "0002_request_logs")
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO providers (slug, spec, custom_host, models, default_model, forward_headers, "
                "allow_entry, notes, created_at, updated_at) VALUES ('old-llm', 'openai', 'http://h/v1', "
                "'[]', NULL, '[]', NULL, '', :now, :now)"), {"now": now})
            await conn.execute(text(
                "INSERT INTO saved_configs (id, text, notes, created_at, updated_at) "
                "VALUES ('old-config', '{}', '', :now, :now)"), {"now": now})
        await upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(select(providers.c.slug, providers.c.workspace_id))).all() == [
                ("old-llm", DEFAULT_WORKSPACE_ID)]
            assert (await conn.execute(select(saved_configs.c.id, saved_configs.c.workspace_id))).all() == [
                ("old-config", DEFAULT_WORKSPACE_ID)]
            assert (await conn.execute(select(workspaces.c.id, workspaces.c.slug))).all() == [
                (DEFAULT_WORKSPACE_ID, "default")]
            assert {"workspace_id", "api_key_id"} <= set(request_logs.c.keys())
    finally:
        await engine.dispose()
