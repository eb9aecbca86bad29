"""Setting up access-control scenes for tests: workspaces, keys, catalog providers and configs written
straight to a gateway's store (as the CLI does), each call on an engine of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.access.keys import KeyRepository
from sluicegate.access.secrets import KeyHasher
from sluicegate.access.workspaces import WorkspaceRepository
from sluicegate.catalog import ConfigRepository, ProviderRepository, provider_input
from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.store.access_tables import api_keys
from sluicegate.store.state import bump_access_version
from sluicegate.vault import Vault

T = TypeVar("T")
ACTOR = "test"


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _run(self, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = create_engine(self.settings)
            try:
                await upgrade(engine)
                return await work(engine)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def workspace(self, name: str, **body: Any) -> str:
        return self._run(lambda e: WorkspaceRepository(e).create({"name": name, **body}, actor=ACTOR))["id"]

    def key(self, name: str = "k", **body: Any) -> tuple[str, str]:
        body.setdefault("workspace_id", "default")
        if body.get("type") == "organisation":
            body.pop("workspace_id")
        view, secret = self._run(
            lambda e: KeyRepository(e, KeyHasher.load(self.settings)).create({"name": name, **body}, actor=ACTOR))
        return view["id"], secret

    def update_key(self, key_id: str, **body: Any) -> dict[str, Any]:
        return self._run(lambda e: KeyRepository(e, KeyHasher.load(self.settings)).update(key_id, body, actor=ACTOR))

    def revoke(self, key_id: str) -> None:
        self._run(lambda e: KeyRepository(e, KeyHasher.load(self.settings)).revoke(key_id, actor=ACTOR))

    def expire(self, key_id: str) -> None:
        """Let a key's time run out: its expiry moved into the past in the store, as time would move it (the
        admin paths refuse to set one there)."""
        async def work(engine: AsyncEngine) -> None:
            async with engine.begin() as conn:
                await bump_access_version(conn)
                await conn.execute(update(api_keys).where(api_keys.c.id == key_id)
                                   .values(expires_at=datetime(2001, 1, 1, tzinfo=UTC)))

        self._run(work)

    def provider(self, slug: str, host: str, workspace: str = "ws-default", **fields: Any) -> None:
        item = provider_input(slug, {"spec": "openai", "custom_host": host, **fields},
                              [("Authorization", f"Bearer upstream-secret-of-{slug}")], None)
        from dataclasses import replace

        self._run(lambda e: ProviderRepository(e, Vault.load(self.settings)).add(
            replace(item, workspace_id=workspace)))

    def config(self, config_id: str, config: dict[str, Any], workspace: str = "ws-default") -> None:
        self._run(lambda e: ConfigRepository(e).add(config_id, orjson.dumps(config).decode(),
                                                     workspace_id=workspace))
