"""The dashboard at ``/dashboard``: plain HTML, CSS and JavaScript modules shipped in the package, and a JSON
API under ``/dashboard/api`` behind a session cookie (api.py, guard.py, sessions.py).

Built by app.py beside the admin API, on the same AdminServices: the dashboard reads and writes through the
same handlers, repositories and log queries, never around them.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..access.principal import Renewal, Verifier
from ..server.admin import SERVICES, AdminServices, json_errors_middleware
from .api import ROUTES, SIGN_IN, VERIFIER, sign_in
from .assets import asset_handlers, load_assets
from .guard import SESSION, api_guard, security_headers
from .sessions import SessionStore

DASHBOARD_PREFIX = "/dashboard"


def dashboard_app(services: AdminServices, verifier: Verifier, renew: Renewal,
                  sessions: SessionStore) -> web.Application:
    """Mount with ``app.add_subapp(DASHBOARD_PREFIX, dashboard_app(...))`` (and redirect the bare prefix).
    ``renew``: a session's principal as of now (None ends the session: its API key was revoked)."""
    scopes = {(method, f"{DASHBOARD_PREFIX}/api{path}"): needed for method, path, _, needed in ROUTES if needed}
    app = web.Application(middlewares=[
        security_headers,
        json_errors_middleware(logging.getLogger("sluicegate.dashboard")),
        api_guard(frozenset({SIGN_IN}), scopes, renew),
    ])
    app[SERVICES] = services
    app[VERIFIER] = verifier
    app[SESSION] = sessions
    index, static = asset_handlers(load_assets())
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_post("/api/session", sign_in)
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, f"/api{path}", handler)
    return app


async def to_dashboard(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{DASHBOARD_PREFIX}/")
