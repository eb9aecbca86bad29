"""Opening the store, the one way every entry point does it (the server, ``--workers`` start-up, the CLI)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from ..settings import Settings
from .engine import create_engine
from .migrate import upgrade


@contextlib.asynccontextmanager
async def opened_store(settings: Settings, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncEngine]:
    """The store migrated to the head revision (a fresh data dir works at once), disposed at the end.
    ``engine``: one built already (the server's, shared by the catalog and the log); else a new one."""
    engine = engine if engine is not None else create_engine(settings)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
