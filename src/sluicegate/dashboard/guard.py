"""The dashboard's defences, as middlewares: security headers on every answer, and for ``/api`` a valid
session cookie, the session's CSRF token on every state change, and the scope each route needs.

Refusals are the gateway's JSON envelope: 401 without a live session (or once the API key it was opened
with is revoked or expired), 403 for a missing or wrong CSRF token, a request from another origin, or a
scope the principal lacks. A request that passes carries the session's principal under ``PRINCIPAL``,
exactly as the admin API's requests do: the same handlers then keep a workspace key to its workspace.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..access.model import Principal
from ..access.principal import Renewal
from ..errors import GatewayError, Unauthorized
from ..server.middleware import Handler
from ..server.principals import PRINCIPAL
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


SIGN_IN_AGAIN_KEY = "The API key this session signed in with was revoked or has expired: sign in again"
SIGN_IN_AGAIN_ADMIN = "The admin token this session signed in with was reset or replaced: sign in again"


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


def current_principal(request: web.Request) -> Principal:
    """The signed-in principal as of this request (set by the guard)."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise Unauthorized("Not signed in: sign in at /dashboard/")
    return principal


def api_guard(open_paths: frozenset[tuple[str, str]], scopes: dict[tuple[str, str], tuple[str, ...]],
              renew: Renewal) -> Any:
    """Session, CSRF and scope checks for every /api route except ``open_paths`` (signing in). ``scopes``:
    (method, route pattern) → the scopes it accepts (any one of them)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/dashboard/api/"):
            return await handler(request)
        if request.method not in SAFE_METHODS:
            check_origin(request)
        if (request.method, request.path) in open_paths:
            return await handler(request)
        sessions = request.app[SESSION]
        session_id = request.cookies.get(COOKIE)
        session = await sessions.get(session_id)
        if session is None:
            raise Unauthorized("Not signed in, or the session ended: sign in at /dashboard/")
        principal = await renew(session.key_id, session.admin_token_hash)
        if principal is None:
            await sessions.close(session_id)
            raise Unauthorized(SIGN_IN_AGAIN_ADMIN if session.key_id is None else SIGN_IN_AGAIN_KEY)
        if request.method not in SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"Refused: missing or wrong CSRF token (send the session's token as {CSRF_HEADER})")
        needed = scopes.get((request.method, _pattern(request)))
        if needed and not any(principal.has_scope(scope) for scope in needed):
            wanted = f"'{needed[0]}'" if len(needed) == 1 else "one of " + ", ".join(needed)
            raise Forbidden(f"Refused: this sign-in lacks the scope {wanted}")
        request[CURRENT] = session
        request[PRINCIPAL] = principal
        return await handler(request)

    return guard


def _pattern(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""
