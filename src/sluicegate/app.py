"""Composition root: Settings → guard, store, upstream client, dispatcher, telemetry … → the aiohttp application.

Nothing else constructs long-lived objects; everything a handler needs hangs off the Gateway built here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .access.admin_token import AdminAuth, ensure_admin_token
from .catalog import ConfigRepository, ProviderRepository
from .config.model import Node, Target
from .dispatch import Dispatcher
from .errors import BadRequest
from .server.headers import RequestContext, public_metadata
from .server.keys import GATEWAY
from .server.middleware import errors_middleware
from .server.admin import ADMIN_PREFIX, AdminServices, admin_app
from .server.observability import add_log_routes, add_metrics_route
from .server.routes import add_routes
from .settings import Settings
from .store import create_engine, upgrade
from .telemetry.metrics import pool_gauges
from .telemetry.service import Telemetry
from .upstream.client import create_session
from .upstream.guard import Guard, GuardPolicy
from .vault import Vault

log = logging.getLogger("sluicegate")

_DIRECT = Target(path="config")  # no config: provider, credential and host all come from the request


@dataclass
class Gateway:
    settings: Settings
    guard: Guard
    engine: AsyncEngine
    telemetry: Telemetry
    dispatcher: Dispatcher = field(init=False)
    session: aiohttp.ClientSession | None = field(init=False, default=None)

    def root_node(self, ctx: RequestContext) -> Node:
        """The config tree for a request: its Gateway Config, or the direct one-target tree."""
        if ctx.config:
            raise BadRequest("x-portkey-config is not supported yet")
        if ctx.provider:
            return _DIRECT
        raise BadRequest("Either x-portkey-config or x-portkey-provider header is required")


def build_app(settings: Settings) -> web.Application:
    guard = Guard(GuardPolicy.from_settings(settings))
    engine = create_engine(settings)
    gateway: Gateway

    def pool():
        return pool_gauges(gateway.session.connector if gateway.session is not None else None)

    telemetry = Telemetry(settings, engine, metadata_of=public_metadata, pool=pool)
    gateway = Gateway(settings=settings, guard=guard, engine=engine, telemetry=telemetry)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    app[GATEWAY] = gateway

    async def store_context(app: web.Application):
        await upgrade(engine)
        generated = await ensure_admin_token(engine, settings.admin_token)
        if generated:  # shown once; only its hash is stored
            print(f"Admin token (shown once, keep it): {generated}", flush=True)
        yield
        await engine.dispose()

    async def upstream_context(app: web.Application):
        session = gateway.session = create_session(settings, guard.resolver())
        gateway.dispatcher = Dispatcher(session, guard, provider_urls=dict(settings.provider_base_urls))
        yield
        await session.close()

    async def telemetry_context(app: web.Application):
        await telemetry.start()
        yield
        await telemetry.close()  # after the server stopped taking requests: drains every record

    # Cleanup runs in reverse: telemetry drains first, while the store is still open.
    app.cleanup_ctx.extend([store_context, upstream_context, telemetry_context])
    add_routes(app)
    add_metrics_route(app)
    app.add_subapp(ADMIN_PREFIX, _admin(settings, engine))
    return app


def _admin(settings: Settings, engine: AsyncEngine) -> web.Application:
    """The admin API (catalog providers and configs, and the request log), behind the admin token."""
    vault = Vault.load(settings)
    services = AdminServices(
        providers=ProviderRepository(engine, vault),
        configs=ConfigRepository(engine),
        auth=AdminAuth(engine, settings.admin_token),
    )
    admin = admin_app(services)
    add_log_routes(admin)
    return admin
