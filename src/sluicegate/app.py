"""Composition root: Settings → guard, store, vault, catalog, upstream transport, pipeline → aiohttp app.

Wiring only: nothing else constructs long-lived objects, and nothing here decides anything about a request.
Everything a handler needs hangs off the Gateway (server/gateway.py) built here.
Start order (cleanup runs in reverse): store (migrations, admin token) → catalog (decrypts every stored
credential, or refuses to start naming the providers) → upstream transport, dispatcher and pipeline →
telemetry (the log sink: on shutdown it drains every record while the store is still open).
"""

from __future__ import annotations

from aiohttp import web

from .access.admin_token import AdminAuth, announce_admin_token
from .access.principal import admin_token_verifier
from .catalog import Catalog, ConfigRepository, ProviderRepository
from .catalog.configs import gateway_config_validator
from .catalog.log_lookups import LogLookups
from .config import ConfigCache
from .dashboard import DASHBOARD_PREFIX, dashboard_app, to_dashboard
from .dispatch import Dispatcher
from .pipeline import ConfigSelector, Pipeline, default_steps
from .prepare import RequestBuilder
from .providers import registry
from .server.admin import ADMIN_PREFIX, AdminServices, admin_app
from .server.appkeys import GATEWAY
from .server.connections import CONNECTIONS, ConnectionGuard, ConnectionLimits
from .server.gateway import Gateway
from .server.hosts import HostPolicy
from .server.middleware import errors_middleware, host_middleware
from .server.observability import add_log_routes, add_metrics_route
from .server.routes import add_routes
from .settings import Settings
from .store import create_engine, opened_store
from .telemetry.metrics import PoolGauges, pool_gauges
from .telemetry.service import Telemetry
from .types import public_metadata
from .upstream.client import create_session
from .upstream.guard import Guard, GuardPolicy
from .upstream.transport import AiohttpTransport, Transport
from .vault import Vault


def build_app(settings: Settings, *, transport: Transport | None = None) -> web.Application:
    """The app for ``settings``; ``transport``: send upstream requests through this one (tests' in-process
    fake) instead of the pooled aiohttp session."""
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

    def pool() -> PoolGauges | None:
        session = getattr(gateway.transport, "session", None)
        return pool_gauges(session.connector if session is not None else None)

    telemetry = Telemetry(settings, engine, metadata_of=public_metadata, pool=pool,
                          lookups=LogLookups(catalog, configs))
    gateway = Gateway(settings=settings, guard=guard, configs=configs, catalog=catalog, engine=engine,
                      telemetry=telemetry)
    hosts = HostPolicy.build(settings.host, settings.allowed_hosts)
    connections = ConnectionGuard(ConnectionLimits(settings.max_connections, settings.header_timeout_s))
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[connections.middleware(), errors_middleware, host_middleware(hosts)])
    app[GATEWAY] = gateway
    app[CONNECTIONS] = connections  # serve.py's listening site puts every connection through it
    app.cleanup_ctx.extend([_store_context(gateway), _catalog_context(gateway),
                            _upstream_context(gateway, transport), _telemetry_context(gateway)])
    add_routes(app)
    add_metrics_route(app)
    services = _admin_services(gateway, vault)
    admin = admin_app(services)
    add_log_routes(admin)
    app.add_subapp(ADMIN_PREFIX, admin)
    app.router.add_get(DASHBOARD_PREFIX, to_dashboard)
    app.add_subapp(DASHBOARD_PREFIX, dashboard_app(services, admin_token_verifier(services.auth)))
    return app


def _store_context(gateway: Gateway):
    async def context(app: web.Application):
        async with opened_store(gateway.settings, gateway.engine) as engine:
            await announce_admin_token(engine, gateway.settings.admin_token)
            yield

    return context


def _catalog_context(gateway: Gateway):
    async def context(app: web.Application):
        # Registered providers' hosts are the operator's explicit allow entries for the SSRF guard.
        gateway.catalog.on_change(lambda snapshot: gateway.guard.set_extra_allows(snapshot.allow_entries))
        await gateway.catalog.start()
        yield
        await gateway.catalog.stop()

    return context


def _upstream_context(gateway: Gateway, given: Transport | None):
    async def context(app: web.Application):
        settings = gateway.settings
        guard = gateway.guard
        transport = gateway.transport = given or AiohttpTransport(
            create_session(settings, guard.resolver(), (guard.client_middleware(),)))
        builder = RequestBuilder(guard, catalog=gateway.catalog, provider_urls=settings.provider_base_urls)
        gateway.dispatcher = Dispatcher(transport, builder, backoff_scale=settings.retry_backoff_scale,
                                        max_response_bytes=settings.max_upstream_body_bytes)
        selector = ConfigSelector(gateway.configs, gateway.catalog.saved_config)
        gateway.pipeline = Pipeline(default_steps(selector, gateway.dispatcher))
        yield
        await transport.close()

    return context


def _telemetry_context(gateway: Gateway):
    async def context(app: web.Application):
        await gateway.telemetry.start()
        yield
        await gateway.telemetry.close()  # the server takes no more requests: drain every record

    return context


def _admin_services(gateway: Gateway, vault: Vault) -> AdminServices:
    """What the admin API (catalog providers, saved configs; the request log is added to it), behind the admin
    token, and the dashboard, behind a session, both read and write through."""
    check = gateway.guard.check_url
    return AdminServices(
        providers=ProviderRepository(gateway.engine, vault, check_host=check),
        configs=ConfigRepository(gateway.engine, validate=gateway_config_validator(check)),
        auth=AdminAuth(gateway.engine, gateway.settings.admin_token),
        on_write=gateway.catalog.refresh,
    )
