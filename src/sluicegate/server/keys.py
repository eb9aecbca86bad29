"""Typed keys for what the composition root hangs on the aiohttp application and requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..app import Gateway

GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")
TRACE_ID = "sluicegate.trace_id"  # request-scoped: set as soon as the trace id is known
