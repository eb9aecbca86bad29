"""The audit trail: one row per admin write (who, what, when, the record before and after).

Written inside the write's own transaction, so an action and its audit row exist together or not at all.
``before``/``after`` are the records as the admin API shows them: masked or absent secrets only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..store.access_tables import audit_events

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditFilter:
    workspace_id: str | None = None
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    since_ms: int | None = None
    limit: int = 100
    before_id: int | None = None  # the page after one whose last (oldest) event has this id


async def record_event(conn: AsyncConnection, *, actor: str, action: str, resource_type: str,
                       resource_id: str, workspace_id: str | None, before: Any = None, after: Any = None) -> None:
    await conn.execute(insert(audit_events).values(
        created_ms=int(time.time() * 1000), actor=actor, action=action, resource_type=resource_type,
        resource_id=resource_id[:256], workspace_id=workspace_id, before=before, after=after))


async def list_events(engine: AsyncEngine, query: AuditFilter) -> list[dict[str, Any]]:
    e = audit_events
    stmt = _matching(select(e), query).order_by(e.c.id.desc()).limit(max(1, min(query.limit, MAX_PAGE)))
    if query.before_id is not None:
        stmt = stmt.where(e.c.id < query.before_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [{"id": r.id, "created_ms": r.created_ms, "actor": r.actor, "action": r.action,
             "resource_type": r.resource_type, "resource_id": r.resource_id, "workspace_id": r.workspace_id,
             "before": r.before, "after": r.after, "object": "audit-event"} for r in rows]


async def count_events(engine: AsyncEngine, query: AuditFilter) -> int:
    """How many events the filter matches, on every page (``limit`` and ``before_id`` aside)."""
    stmt = _matching(select(func.count()).select_from(audit_events), query)
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


def _matching(stmt: Select, query: AuditFilter) -> Select:
    """``stmt`` narrowed to the events the filter names."""
    e = audit_events
    for column, value in (("workspace_id", query.workspace_id), ("actor", query.actor),
                          ("action", query.action), ("resource_type", query.resource_type)):
        if value is not None:
            stmt = stmt.where(e.c[column] == value)
    if query.since_ms is not None:
        stmt = stmt.where(e.c.created_ms >= query.since_ms)
    return stmt
