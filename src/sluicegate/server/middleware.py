"""The one place where exceptions become HTTP answers: a JSON envelope, never a traceback.

``error_for`` decides what any exception means to a client; ``edge_middleware`` (the app's) and the admin
sub-app's middleware (server/admin.py) only render it, each in its envelope.

The app has this one middleware, not one per job: each middleware is one more coroutine per request, and
one more frame that every resumption of the handler passes through (docs/benchmarks.md, "The gateway's own
path").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from mypy_extensions import mypyc_attr

from ..errors import GatewayError, InternalError, MethodNotAllowed, NotFound, PayloadTooLarge
from .appkeys import TRACE_ID
from .connections import ConnectionGuard
from .envelope import error_response
from .hosts import HostPolicy, RememberedHosts, refused_host

log = logging.getLogger("sluicegate.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer_for(exc: BaseException) -> GatewayError | None:
    """What ``exc`` tells a client: the gateway's own error as it is, aiohttp's refusals (404, 405, 413 …)
    in the gateway's words, any other exception a 500 (``InternalError``). None when there is no answer
    (a cancelled handler: the client left). The request log records the same (routes.py)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(exc) if exc.status >= 400 else None
    if isinstance(exc, Exception):
        return InternalError()
    return None


def error_for(exc: Exception, request: web.Request, logger: logging.Logger = log) -> GatewayError:
    """``answer_for``, and a 500's traceback to ``logger`` (the operator's log) only."""
    answer = answer_for(exc)
    if answer is None or isinstance(answer, InternalError):
        # It may not name secrets: none are in the locals we log.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return InternalError()
    return answer


def _from_http_exception(exc: web.HTTPException) -> GatewayError:
    if exc.status == 404:
        return NotFound("Not Found")
    if exc.status == 413:
        return PayloadTooLarge("Request body is larger than the gateway's limit")
    if isinstance(exc, web.HTTPMethodNotAllowed):  # with the Allow header RFC 9110 asks of a 405
        return MethodNotAllowed(f"Method {exc.method} is not allowed here", allowed=exc.allowed_methods)
    return GatewayError(exc.reason or "Request refused", status=exc.status)


@mypyc_attr(native_class=False)  # compiled (setup.py), a subclass of a Python class stays one
class MisdirectedHost(GatewayError):
    status = 421


def edge_middleware(connections: ConnectionGuard, policy: HostPolicy) -> Middleware:
    """What every request goes through, before any route (the admin API and /metrics included), outermost
    first:

    - drain tracking: the request's connection knows a request runs (no head timer; shutdown can cancel
      it, see connections.py) until the handler returns;
    - the error envelope: any exception becomes a JSON answer (``error_for``), never a traceback;
    - the host check: a request whose Host is not one the gateway serves (DNS rebinding, see hosts.py) is
      refused with a 421, in that envelope.
    """
    hosts = RememberedHosts(policy)

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = connections.started(request)
        try:
            refused = refused_host(hosts, request.headers.get("Host"), request.raw_path)
            if refused is not None:
                raise MisdirectedHost(
                    f"Host '{refused[:255]}' is not served by this gateway: list it in "
                    "SLUICEGATE_ALLOWED_HOSTS (a defence against DNS rebinding, see docs/security.md)"
                )
            return await handler(request)
        except web.HTTPException as refusal:  # one name per clause: compiled (setup.py), a name has one type
            if refusal.status < 400:
                raise
            return error_response(error_for(refusal, request), request.get(TRACE_ID))
        except Exception as exc:
            return error_response(error_for(exc, request), request.get(TRACE_ID))
        finally:
            if connection is not None:
                connection.request_finished()

    return edge
