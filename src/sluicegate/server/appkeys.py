"""Typed keys for what the composition root hangs on the aiohttp application and requests."""

from __future__ import annotations

from aiohttp import web

from .gateway import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
TRACE_ID = "sluicegate.trace_id"  # request-scoped: set as soon as the trace id is known
