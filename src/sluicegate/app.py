"""Composition root: Settings → guard, upstream client, dispatcher … → the aiohttp application.

Nothing else constructs long-lived objects; everything a handler needs hangs off the Gateway built here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from .config.model import Node, Target
from .dispatch import Dispatcher
from .errors import BadRequest
from .server.headers import RequestContext
from .server.keys import GATEWAY
from .server.middleware import errors_middleware
from .server.routes import add_routes
from .settings import Settings
from .upstream.client import create_session
from .upstream.guard import Guard, GuardPolicy

log = logging.getLogger("sluicegate")

_DIRECT = Target(path="config")  # no config: provider, credential and host all come from the request


@dataclass
class Gateway:
    settings: Settings
    guard: Guard
    dispatcher: Dispatcher = field(init=False)

    def root_node(self, ctx: RequestContext) -> Node:
        """The config tree for a request: its Gateway Config, or the direct one-target tree."""
        if ctx.config:
            raise BadRequest("x-portkey-config is not supported yet")
        if ctx.provider:
            return _DIRECT
        raise BadRequest("Either x-portkey-config or x-portkey-provider header is required")


def build_app(settings: Settings) -> web.Application:
    guard = Guard(GuardPolicy.from_settings(settings))
    gateway = Gateway(settings=settings, guard=guard)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    app[GATEWAY] = gateway

    async def upstream_context(app: web.Application):
        session = create_session(settings, guard.resolver())
        gateway.dispatcher = Dispatcher(session, guard, provider_urls=dict(settings.provider_base_urls))
        yield
        await session.close()

    app.cleanup_ctx.append(upstream_context)
    add_routes(app)
    return app
