"""Composition root: Settings → guard, upstream client, dispatcher … → the aiohttp application.

Nothing else constructs long-lived objects; everything a handler needs hangs off the Gateway built here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from .config import ConfigCache
from .config.model import Node, Target
from .dispatch import Call, Dispatcher
from .prepare import RequestBuilder
from .errors import BadRequest
from .providers import registry
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
    configs: ConfigCache
    dispatcher: Dispatcher = field(init=False)

    def root_node(self, call: Call) -> Node:
        """The config tree for a request: its Gateway Config, or the direct one-target tree."""
        ctx = call.ctx
        if ctx.config:
            return self.configs.get(ctx.config)
        if ctx.provider or call.model_slug:
            return _DIRECT
        raise BadRequest("Either x-portkey-config or x-portkey-provider header is required")


def build_app(settings: Settings) -> web.Application:
    guard = Guard(GuardPolicy.from_settings(settings))
    configs = ConfigCache(
        known_providers=registry.PROVIDERS.keys(),
        check_host=guard.check_url,  # request-time checks only: pure, so a cached verdict stays true
        maxsize=settings.config_cache_size,
    )
    gateway = Gateway(settings=settings, guard=guard, configs=configs)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    app[GATEWAY] = gateway

    async def upstream_context(app: web.Application):
        session = create_session(settings, guard.resolver())
        builder = RequestBuilder(guard, provider_urls=settings.provider_base_urls)
        gateway.dispatcher = Dispatcher(session, builder, backoff_scale=settings.retry_backoff_scale)
        yield
        await session.close()

    app.cleanup_ctx.append(upstream_context)
    add_routes(app)
    return app
