"""Audit rows for the catalog's admin writes (providers, configs, integrations), made by the HTTP surfaces
after the write committed (access writes are audited inside their own transaction, access/audit.py).
``before``/``after`` are the records as the API shows them: header values masked, never a secret."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.audit import record_event
from .principals import principal_of

# Where audit rows go: set on the application by app.py (an admin sub-app built alone, as some tests do,
# has none and records nothing).
AUDIT_STORE = web.AppKey("sluicegate_audit_store", AsyncEngine)


async def audited(request: web.Request, action: str, resource_type: str, resource_id: str,
                  workspace_id: str | None, *, before: Any = None, after: Any = None) -> None:
    engine = request.config_dict.get(AUDIT_STORE)
    if engine is None:
        return
    async with engine.begin() as conn:
        await record_event(conn, actor=principal_of(request).actor, action=action, resource_type=resource_type,
                           resource_id=resource_id, workspace_id=workspace_id, before=before, after=after)
