"""Typed keys for what the composition root hangs on the aiohttp application and requests."""

from __future__ import annotations

from aiohttp import web

from .gateway import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
TRACE_ID: web.RequestKey[str] = web.RequestKey("sluicegate_trace_id", str)  # set as soon as the trace id is known
