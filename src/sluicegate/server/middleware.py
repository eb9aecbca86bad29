"""The one place where errors become HTTP responses: a JSON envelope, never a traceback."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from ..errors import GatewayError, NotFound, PayloadTooLarge
from .hosts import HostPolicy, refused_host
from .keys import TRACE_ID

log = logging.getLogger("sluicegate.server")


def error_response(error: GatewayError, trace_id: str | None) -> web.Response:
    headers = {"x-portkey-trace-id": trace_id} if trace_id else None
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
        headers=headers,
    )


def _from_http_exception(exc: web.HTTPException) -> GatewayError:
    if exc.status == 404:
        return NotFound("Not Found")
    if exc.status == 413:
        return PayloadTooLarge("Request body is larger than the gateway's limit")
    if exc.status == 405:
        return GatewayError(f"Method {exc.method} is not allowed here", status=405)  # type: ignore[attr-defined]
    return GatewayError(exc.reason or "Request refused", status=exc.status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error, request.get(TRACE_ID))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc), request.get(TRACE_ID))
    except Exception:
        # The traceback goes to the operator's log only; it may not name secrets (none are in locals we log).
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError("Something went wrong"), request.get(TRACE_ID))


class MisdirectedHost(GatewayError):
    status = 421


def host_middleware(policy: HostPolicy):
    """Refuse a request whose Host is not one the gateway serves (DNS rebinding, see hosts.py): before any
    route, the admin API and /metrics included. Placed inside errors_middleware, which makes the envelope."""

    @web.middleware
    async def check_host(request: web.Request, handler):
        refused = refused_host(policy, request.headers.get("Host"), request.raw_path)
        if refused is not None:
            raise MisdirectedHost(
                f"Host '{refused[:255]}' is not served by this gateway: list it in SLUICEGATE_ALLOWED_HOSTS "
                "(a defence against DNS rebinding, see docs/security.md)"
            )
        return await handler(request)

    return check_host
