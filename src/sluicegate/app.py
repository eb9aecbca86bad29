"""Composition root: Settings → guard, store, vault, catalog, upstream client, dispatcher → aiohttp app.

Nothing else constructs long-lived objects; everything a handler needs hangs off the Gateway built here.
Start order (cleanup runs in reverse): store (migrations, admin token) → catalog (decrypts every stored
credential, or refuses to start naming the providers) → upstream session and dispatcher → telemetry (the
log sink: on shutdown it drains every record while the store is still open).
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
from .server.connections import CONNECTIONS, ConnectionGuard, ConnectionLimits
from .server.headers import public_metadata
from .server.keys import GATEWAY
from .server.hosts import HostPolicy
from .server.middleware import errors_middleware, host_middleware
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
    configs: ConfigCache
    catalog: Catalog
    engine: AsyncEngine
    telemetry: Telemetry
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
    gateway: Gateway

    def pool():
        return pool_gauges(gateway.session.connector if gateway.session is not None else None)

    telemetry = Telemetry(settings, engine, metadata_of=public_metadata, pool=pool,
                          lookups=_LogLookups(catalog, configs))
    gateway = Gateway(settings=settings, guard=guard, configs=configs, catalog=catalog, engine=engine,
                      telemetry=telemetry)
    hosts = HostPolicy.build(settings.host, settings.allowed_hosts)
    connections = ConnectionGuard(ConnectionLimits(settings.max_connections, settings.header_timeout_s))
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[connections.middleware(), errors_middleware, host_middleware(hosts)])
    app[GATEWAY] = gateway
    app[CONNECTIONS] = connections  # serve.py's listening site puts every connection through it
    app.cleanup_ctx.extend([_store_context(gateway), _catalog_context(gateway), _upstream_context(gateway),
                            _telemetry_context(gateway)])
    add_routes(app)
    add_metrics_route(app)
    admin = _admin(gateway, vault)
    add_log_routes(admin)
    app.add_subapp(ADMIN_PREFIX, admin)
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
        gateway.dispatcher = Dispatcher(session, builder, backoff_scale=settings.retry_backoff_scale,
                                        max_response_bytes=settings.max_upstream_body_bytes)
        yield
        await session.close()

    return context


class _LogLookups:
    """What the request log asks of the catalog and the config cache (telemetry sits below both)."""

    def __init__(self, catalog: Catalog, configs: ConfigCache) -> None:
        self._catalog, self._configs = catalog, configs

    def provider(self, provider_id: str) -> tuple[str | None, tuple[str, ...]]:
        found = self._catalog.resolve(provider_id) if provider_id.startswith("@") else None
        if found is None:
            return None, ()
        return found.spec, tuple(value for _, value in found.headers)

    def config_secrets(self, config: str) -> tuple[str, ...]:
        if config[:1] not in "{[":
            return ()  # a saved config's id: saved configs cannot hold credentials
        root = self._compiled(config)
        return tuple(target.api_key for target in _targets(root) if target.api_key) if root else ()

    def config_forward_names(self, config: str) -> tuple[str, ...]:
        root = self._compiled(config)
        return tuple(dict.fromkeys(n for target in _targets(root) for n in target.forward_headers)) if root else ()

    def _compiled(self, config: str) -> Node | None:
        text = config if config[:1] in "{[" else self._catalog.saved_config(config)
        if text is None:
            return None
        try:
            return self._configs.get(text)  # cached: the request compiled it already
        except Exception:  # noqa: BLE001 - a config the request was refused for has nothing to scrub
            return None


def _targets(node: Node):
    if isinstance(node, Target):
        yield node
        return
    for child in node.children:
        yield from _targets(child)


def _telemetry_context(gateway: Gateway):
    async def context(app: web.Application):
        await gateway.telemetry.start()
        yield
        await gateway.telemetry.close()  # the server takes no more requests: drain every record

    return context


def _admin(gateway: Gateway, vault: Vault) -> web.Application:
    """The admin API (catalog providers, saved configs; the request log is added to it), behind the admin
    token, apart from /v1."""
    check = gateway.guard.check_url
    services = AdminServices(
        providers=ProviderRepository(gateway.engine, vault, check_host=check),
        configs=ConfigRepository(gateway.engine, validate=gateway_config_validator(check)),
        auth=AdminAuth(gateway.engine, gateway.settings.admin_token),
        on_write=gateway.catalog.refresh,
    )
    return admin_app(services)
