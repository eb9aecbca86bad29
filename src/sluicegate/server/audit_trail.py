"""Audit rows for the catalog's admin writes (providers, configs, integrations), made by the HTTP surfaces
after the write committed (access writes are audited inside their own transaction, access/audit.py).
``before``/``after`` are the records as the API shows them: header values masked, never a secret."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..access.audit import record_event
from .appkeys import GATEWAY
from .principals import principal_of


async def audited(request: web.Request, action: str, resource_type: str, resource_id: str,
                  workspace_id: str | None, *, before: Any = None, after: Any = None) -> None:
    engine = request.config_dict[GATEWAY].engine
    async with engine.begin() as conn:
        await record_event(conn, actor=principal_of(request).actor, action=action, resource_type=resource_type,
                           resource_id=resource_id, workspace_id=workspace_id, before=before, after=after)
