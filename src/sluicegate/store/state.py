"""The catalog version counter: bumped by every catalog write, polled by running servers."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import CATALOG_STATE_ID, catalog_state


async def bump_catalog_version(conn: AsyncConnection) -> None:
    """Call inside the writing transaction, so readers never see new data under an old version."""
    await conn.execute(
        update(catalog_state)
        .where(catalog_state.c.id == CATALOG_STATE_ID)
        .values(version=catalog_state.c.version + 1)
    )


async def read_catalog_version(conn: AsyncConnection) -> int:
    version = await conn.scalar(select(catalog_state.c.version).where(catalog_state.c.id == CATALOG_STATE_ID))
    return int(version or 0)


async def bump_access_version(conn: AsyncConnection) -> None:
    """Like ``bump_catalog_version``, for API keys and workspaces (the access snapshot's version row)."""
    from .access_tables import ACCESS_STATE_ID

    await conn.execute(
        update(catalog_state).where(catalog_state.c.id == ACCESS_STATE_ID).values(version=catalog_state.c.version + 1)
    )


async def read_access_version(conn: AsyncConnection) -> int:
    from .access_tables import ACCESS_STATE_ID

    version = await conn.scalar(select(catalog_state.c.version).where(catalog_state.c.id == ACCESS_STATE_ID))
    return int(version or 0)
