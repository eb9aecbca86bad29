"""The API keys page's list: the keys the signed-in principal may see, each with its limits and its budget's
usage this period, in one call (the access admin's list, then the limits snapshot in memory and one
counter read per key that has a budget).

Everything else on that page goes through the access admin's own handlers (create, update, revoke), which
keep a workspace key to its workspace and refuse granting a scope the caller does not hold.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..access.model import KEY_TYPES, SUB_TYPES
from ..errors import LimitsUnavailable
from ..limits.checks import Subject
from ..server.access_admin import ACCESS_ADMIN, key_scope, lists_key, narrowed_workspace, own_workspace_named
from ..server.appkeys import GATEWAY
from ..server.queries import checked_query
from .guard import Forbidden, current_principal

LIST_SCOPES = tuple(key_scope(t, s, "list") for t in KEY_TYPES for s in SUB_TYPES)


async def list_keys(request: web.Request) -> web.Response:
    caller = current_principal(request)
    if not any(caller.has_scope(scope) for scope in LIST_SCOPES):
        raise Forbidden("Refused: this sign-in lacks an '*_api_keys.list' scope")
    asked = checked_query(request, ("workspace_id",)).get("workspace_id")  # the admin API's rules
    admin = request.config_dict[ACCESS_ADMIN]
    await own_workspace_named(request, caller, asked)
    keys = [key for key in await admin.keys.list(workspace_id=await narrowed_workspace(admin.engine, caller, asked))
            if lists_key(caller, key)]
    return web.Response(body=orjson.dumps({"object": "list", "total": len(keys),
                                           "data": [await _with_usage(request, key) for key in keys]}),
                        content_type="application/json")


async def _with_usage(request: web.Request, key: dict[str, Any]) -> dict[str, Any]:
    gateway = request.config_dict[GATEWAY]
    limits = gateway.limits.key_limits(key["id"])
    shown: dict[str, Any] = {"rate_limits": [], "usage_limits": None, "used": None}
    if limits is not None:
        shown["rate_limits"] = [rate.shape() for rate in limits.rate_limits]
        if limits.usage_limits is not None:
            shown["usage_limits"] = limits.usage_limits.shape()
            try:
                shown["used"] = await gateway.limiter.used(Subject("key", key["id"], limits))
            except LimitsUnavailable as exc:
                shown["usage_error"] = exc.message
    return {**key, **shown}
