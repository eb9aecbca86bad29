"""Composition root: Settings → guard, store, vault, catalog, upstream client, dispatcher → aiohttp app.

Nothing else constructs long-lived objects; everything a handler needs hangs off the Gateway built here.
Start order (cleanup runs in reverse): store (migrations, admin token) → catalog (decrypts every stored
credential, or refuses to start naming the providers) → upstream session and dispatcher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .access.admin_token import AdminAuth, ensure_admin_token
from .catalog import Catalog, ConfigRepository, ProviderRepository
from .catalog.configs import gateway_config_validator
from .config import ConfigCache
from .config.model import Node, Target
from .dispatch import Call, Dispatcher
from .errors import BadRequest
from .prepare import RequestBuilder
from .providers import registry
from .server.admin import ADMIN_PREFIX, AdminServices, admin_app
from .server.keys import GATEWAY
from .server.middleware import errors_middleware
from .server.routes import add_routes
from .settings import Settings
from .store import create_engine, upgrade
from .upstream.client import create_session
from .upstream.guard import Guard, GuardPolicy
from .vault import Vault

log = logging.getLogger("sluicegate")

_DIRECT = Target(path="config")  # no config: provider, credential and host all come from the request


@dataclass
class Gateway:
    settings: Settings
    guard: Guard
    configs: ConfigCache
    catalog: Catalog
    engine: AsyncEngine
    dispatcher: Dispatcher = field(init=False)
    session: aiohttp.ClientSession | None = field(init=False, default=None)

    def root_node(self, call: Call) -> Node:
        """The config tree for a request: its Gateway Config, or the direct one-target tree."""
        ctx = call.ctx
        if ctx.config:
            return self.configs.get(self._config_text(ctx.config))
        if ctx.provider or call.model_slug:
            return _DIRECT
        raise BadRequest("Either x-portkey-config or x-portkey-provider header is required")

    def _config_text(self, value: str) -> str:
        """Inline JSON, or the id of a saved config (the portkey-ai SDK sends either as is)."""
        if value[0] in "{[":
            return value
        text = self.catalog.saved_config(value)
        if text is None:
            raise BadRequest(f"Config '{value[:64]}' not found: x-portkey-config takes a JSON config "
                             "or the id of a saved config")
        return text


def build_app(settings: Settings) -> web.Application:
    guard = Guard(GuardPolicy.from_settings(settings))
    engine = create_engine(settings)
    vault = Vault.load(settings)
    catalog = Catalog(engine, vault)
    configs = ConfigCache(
        known_providers=registry.PROVIDERS.keys(),
        check_host=guard.check_url,  # request-time checks only: pure, so a cached verdict stays true
        maxsize=settings.config_cache_size,
    )
    gateway = Gateway(settings=settings, guard=guard, configs=configs, catalog=catalog, engine=engine)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    app[GATEWAY] = gateway
    app.cleanup_ctx.extend([_store_context(gateway), _catalog_context(gateway), _upstream_context(gateway)])
    add_routes(app)
    app.add_subapp(ADMIN_PREFIX, _admin(gateway, vault))
    return app


def _store_context(gateway: Gateway):
    async def context(app: web.Application):
        await upgrade(gateway.engine)
        generated = await ensure_admin_token(gateway.engine, gateway.settings.admin_token)
        if generated:  # shown once; only its hash is stored
            print(f"Admin token (shown once, keep it): {generated}", flush=True)
        yield
        await gateway.engine.dispose()

    return context


def _catalog_context(gateway: Gateway):
    async def context(app: web.Application):
        # Registered providers' hosts are the operator's explicit allow entries for the SSRF guard.
        gateway.catalog.on_change(lambda snapshot: gateway.guard.set_extra_allows(snapshot.allow_entries))
        await gateway.catalog.start()
        yield
        await gateway.catalog.stop()

    return context


def _upstream_context(gateway: Gateway):
    async def context(app: web.Application):
        settings = gateway.settings
        guard = gateway.guard
        session = gateway.session = create_session(settings, guard.resolver(), (guard.client_middleware(),))
        builder = RequestBuilder(guard, catalog=gateway.catalog, provider_urls=settings.provider_base_urls)
        gateway.dispatcher = Dispatcher(session, builder, backoff_scale=settings.retry_backoff_scale)
        yield
        await session.close()

    return context


def _admin(gateway: Gateway, vault: Vault) -> web.Application:
    """The admin API (catalog providers and saved configs), behind the admin token, apart from /v1."""
    check = gateway.guard.check_url
    services = AdminServices(
        providers=ProviderRepository(gateway.engine, vault, check_host=check),
        configs=ConfigRepository(gateway.engine, validate=gateway_config_validator(check)),
        auth=AdminAuth(gateway.engine, gateway.settings.admin_token),
        on_write=gateway.catalog.refresh,
    )
    return admin_app(services)
