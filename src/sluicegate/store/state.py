"""The version counters of the in-memory snapshots (catalog, access, limits): bumped by every write of
their data, read by running servers to know when to reload.

On PostgreSQL a bump also sends ``NOTIFY sluicegate_changes`` with the counter's id, in the writing
transaction: PostgreSQL delivers it at commit (never for a rolled-back write), to every process listening
(store/notify.py), so every replica reloads within milliseconds instead of at its next poll.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import CATALOG_STATE_ID, catalog_state

CHANGES_CHANNEL = "sluicegate_changes"


async def bump_version(conn: AsyncConnection, state_id: int) -> None:
    """Call inside the writing transaction, so readers never see new data under an old version."""
    await conn.execute(
        update(catalog_state).where(catalog_state.c.id == state_id).values(version=catalog_state.c.version + 1)
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHANGES_CHANNEL, str(state_id))))


async def read_version(conn: AsyncConnection, state_id: int) -> int:
    version = await conn.scalar(select(catalog_state.c.version).where(catalog_state.c.id == state_id))
    return int(version or 0)


# Every snapshot's version at once (one query): what the reload loop compares (store/polling.py). Also run,
# compiled to SQL text, by the SQLite reads outside SQLAlchemy (periodic_reads.py).
VERSIONS_QUERY = select(catalog_state.c.id, catalog_state.c.version)


def versions_by_id(rows: Iterable[Any]) -> dict[int, int]:
    """``VERSIONS_QUERY``'s rows as {state id: version}."""
    return {int(state_id): int(version) for state_id, version in rows}


async def read_versions(conn: AsyncConnection) -> dict[int, int]:
    return versions_by_id(await conn.execute(VERSIONS_QUERY))


async def bump_catalog_version(conn: AsyncConnection) -> None:
    await bump_version(conn, CATALOG_STATE_ID)


async def read_catalog_version(conn: AsyncConnection) -> int:
    return await read_version(conn, CATALOG_STATE_ID)


async def bump_access_version(conn: AsyncConnection) -> None:
    """Like ``bump_catalog_version``, for API keys and workspaces (the access snapshot's version row)."""
    from .access_tables import ACCESS_STATE_ID

    await bump_version(conn, ACCESS_STATE_ID)


async def read_access_version(conn: AsyncConnection) -> int:
    from .access_tables import ACCESS_STATE_ID

    return await read_version(conn, ACCESS_STATE_ID)
