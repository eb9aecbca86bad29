"""The dashboard's defences, as middlewares: security headers on every answer, and for ``/api`` a valid
session cookie, the session's CSRF token on every state change, and the scope each route needs.

Refusals are the gateway's JSON envelope: 401 without a live session, 403 for a missing or wrong CSRF token,
a request from another origin, or a scope the principal lacks.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import GatewayError, Unauthorized
from ..server.middleware import Handler
from .sessions import Session, SessionStore

COOKIE = "sg_dashboard"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# No inline script or style anywhere: every script and stylesheet is a file under /dashboard/static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SESSION = web.AppKey("sluicegate_dashboard_sessions", SessionStore)
CURRENT: web.RequestKey[Session] = web.RequestKey("sluicegate_dashboard_session")  # the request's session


class Forbidden(GatewayError):
    status = 403


def secure_request(request: web.Request) -> bool:
    """Came over TLS, directly or through a proxy that terminated it (X-Forwarded-Proto: https)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def check_origin(request: web.Request) -> None:
    """A browser names the page's origin on every POST/PUT/PATCH/DELETE; it must be this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    scheme = "https" if secure_request(request) else "http"
    if origin != f"{scheme}://{request.host}" and origin != f"http://{request.host}":
        raise Forbidden("Refused: this request comes from another origin")


def session_of(request: web.Request) -> Session:
    session: Session | None = request.get(CURRENT)
    if session is None:
        raise Unauthorized("Not signed in: sign in at /dashboard/")
    return session


def api_guard(open_paths: frozenset[tuple[str, str]], scopes: dict[tuple[str, str], str]) -> Any:
    """Session, CSRF and scope checks for every /api route except ``open_paths`` (signing in). ``scopes``:
    (method, route pattern) → the scope it needs."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/dashboard/api/"):
            return await handler(request)
        if request.method not in SAFE_METHODS:
            check_origin(request)
        if (request.method, request.path) in open_paths:
            return await handler(request)
        session = request.app[SESSION].get(request.cookies.get(COOKIE))
        if session is None:
            raise Unauthorized("Not signed in, or the session ended: sign in at /dashboard/")
        if request.method not in SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"Refused: missing or wrong CSRF token (send the session's token as {CSRF_HEADER})")
        scope = scopes.get((request.method, _pattern(request)))
        if scope is not None and not session.principal.allows(scope):
            raise Forbidden(f"Refused: this sign-in lacks the scope '{scope}'")
        if scope is not None and session.principal.workspace is not None:
            # Logs, providers and configs carry no workspace yet: a workspace's key would see them all.
            raise Forbidden("Refused: a workspace-scoped sign-in sees nothing here until records carry workspaces")
        request[CURRENT] = session
        return await handler(request)

    return guard


def _pattern(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""
