"""Observability routes: ``GET /metrics`` (Prometheus text) and the request-log API under ``/admin/api``.

The log API needs the admin token (``Authorization: Bearer …``); every bad query parameter is a 400 with
the gateway's envelope. /metrics is open like a health check: it carries counts and label values only
(providers, models, statuses), never trace ids, users or anything from a request's content.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import NotFound, Unauthorized
from ..telemetry import params, query
from .keys import GATEWAY


async def metrics(request: web.Request) -> web.Response:
    body = request.app[GATEWAY].telemetry.metrics_text()
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def _require_admin(request: web.Request) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Admin token required: Authorization: Bearer <admin token>")
    if not await request.app[GATEWAY].admin_auth.check(token.strip()):
        raise Unauthorized("Invalid admin token")


def _json(payload: object) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def list_logs(request: web.Request) -> web.Response:
    await _require_admin(request)
    page = params.parse_page(request.query)
    return _json(await query.list_logs(request.app[GATEWAY].telemetry.engine, page))


async def get_log(request: web.Request) -> web.Response:
    await _require_admin(request)
    record = await query.get_log(request.app[GATEWAY].telemetry.engine, request.match_info["log_id"])
    if record is None:
        raise NotFound("No such log record")
    return _json(record)


async def analytics(request: web.Request) -> web.Response:
    await _require_admin(request)
    q = params.parse_analytics(request.query)
    return _json(await query.analytics(request.app[GATEWAY].telemetry.engine, q))


def add_observability_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/metrics", metrics)
    router.add_get("/admin/api/logs", list_logs)
    router.add_get("/admin/api/logs/{log_id}", get_log)
    router.add_get("/admin/api/analytics", analytics)
