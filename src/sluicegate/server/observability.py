"""Observability routes: ``GET /metrics`` (Prometheus text) and the request-log API.

The log routes join the admin sub-app (server/admin.py, mounted at ``/admin/api``), whose middlewares
require the admin token and turn every refusal, such as a bad query parameter (400), into the gateway's
envelope. Handlers find the Gateway through ``config_dict``, which reaches the parent app from a sub-app.
/metrics is open like a health check: it carries counts and label values only (providers, models,
statuses), never trace ids, users or anything from a request's content.
"""

from __future__ import annotations

from dataclasses import replace

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import NotFound
from ..telemetry import params, query
from .appkeys import GATEWAY
from .principals import require


async def metrics(request: web.Request) -> web.Response:
    body = request.config_dict[GATEWAY].telemetry.metrics_text()
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


def _json(payload: object) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def list_logs(request: web.Request) -> web.Response:
    principal = require(request, "logs.list")
    page = params.parse_page(request.query)
    if principal.workspace_id is not None:
        page = replace(page, filter=params.within_workspace(page.filter, principal.workspace_id))
    return _json(await query.list_logs(request.config_dict[GATEWAY].telemetry.engine, page))


async def get_log(request: web.Request) -> web.Response:
    principal = require(request, "logs.view")
    params.no_parameters(request.query)
    record = await query.get_log(request.config_dict[GATEWAY].telemetry.engine, request.match_info["log_id"])
    if record is None or not principal.sees_workspace(record["workspace_id"]):
        raise NotFound("No such log record")
    return _json(record)


async def analytics(request: web.Request) -> web.Response:
    principal = require(request, "analytics.view")
    q = params.parse_analytics(request.query)
    if principal.workspace_id is not None:
        q = replace(q, filter=params.within_workspace(q.filter, principal.workspace_id))
    return _json(await query.analytics(request.config_dict[GATEWAY].telemetry.engine, q))


def add_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)


def add_log_routes(admin: web.Application) -> None:
    """On the admin sub-app: /admin/api/logs, /admin/api/logs/{id}, /admin/api/analytics."""
    admin.router.add_get("/logs", list_logs)
    admin.router.add_get("/logs/{log_id}", get_log)
    admin.router.add_get("/analytics", analytics)
