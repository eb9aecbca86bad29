"""Composition root: Settings → guard, store, vault, catalog, upstream transport, pipeline → aiohttp app.

Wiring only: nothing else constructs long-lived objects, and nothing here decides anything about a request.
Everything a handler needs hangs off the Gateway (server/gateway.py) built here.
Start order (cleanup runs in reverse): store (migrations, admin token) → catalog (decrypts every stored
credential, or refuses to start naming the providers) → upstream transport, dispatcher and pipeline →
telemetry (the log sink: on shutdown it drains every record while the store is still open).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .access.admin_token import AdminAuth, check_env_token
from .access.keys import KeyRepository
from .access.mode import startup_notice
from .access.principal import admin_token_verifier, api_key_verifier, first_match, key_renewal
from .access.registry import AccessRegistry
from .access.secrets import KeyHasher
from .access.workspaces import WorkspaceRepository
from .cache import build_cache
from .catalog import Catalog, ConfigRepository, ProviderRepository
from .catalog.configs import gateway_config_validator
from .catalog.integrations import IntegrationRepository
from .catalog.log_lookups import LogLookups
from .config import ConfigCache
from .dashboard import DASHBOARD_PREFIX, dashboard_app, to_dashboard
from .dashboard.sessions import SessionStore
from .dispatch import Dispatcher
from .foreground import Foreground
from .limits.attempts import AttemptLimits
from .limits.backend import Counters
from .limits.limiter import Limiter
from .limits.memory import MemoryCounters
from .limits.metrics import LimitMetrics
from .limits.registry import LimitRegistry
from .limits.store import LimitRepository
from .pipeline import Admit, Authorize, ConfigSelector, LimitStep, Pipeline, default_steps
from .prepare import RequestBuilder
from .providers import registry
from .routing import CircuitBreaker
from .routing.load import BoardPolicy, LoadBoard
from .server.access_admin import ACCESS_ADMIN, AccessAdmin, add_access_routes
from .server.admin import ADMIN_PREFIX, AdminServices, admin_app
from .server.appkeys import GATEWAY
from .server.audit_trail import AUDIT_STORE
from .server.connections import CONNECTIONS, ConnectionGuard, ConnectionLimits
from .server.envelope import SERVER_NAME
from .server.gateway import Gateway
from .server.hosts import HostPolicy
from .server.limits_admin import add_limit_routes
from .server.middleware import edge_middleware
from .server.native import NATIVE, NativeServer
from .server.observability import add_log_routes, add_metrics_route
from .server.paths import PORTKEY_ADMIN_PATHS
from .server.portkey_catalog import CATALOG_ADMIN, CatalogAdmin, add_portkey_catalog_routes
from .server.readiness import READINESS, Readiness, add_probe_routes
from .server.routes import add_reserved_routes, add_routes
from .settings import PROVIDER_URL_PREFIX, Settings
from .store import create_engine, opened_store
from .store.access_tables import ACCESS_STATE_ID
from .store.engine import database_url, is_sqlite
from .store.limit_tables import LIMITS_STATE_ID
from .store.notify import ChangeListener
from .store.periodic_reads import PeriodicReads, periodic_reads
from .store.polling import VersionWatch
from .store.tables import CATALOG_STATE_ID
from .telemetry.metrics import PoolGauges, TargetGauges, pool_gauges
from .telemetry.service import Telemetry
from .types import public_metadata
from .upstream.client import create_session
from .upstream.guard import Guard, GuardPolicy
from .upstream.h1 import H1Transport
from .upstream.probes import Prober
from .upstream.transport import AiohttpTransport, Transport
from .vault import Vault
from .vault.rotate import refuse_a_new_key_beside_lost_ones
from .write_batch import WriteBatch

if TYPE_CHECKING:
    from .cluster.breaker import RedisBreakerPeer

SQLITE_RELOAD_S = 0.5
NOTIFIED_RELOAD_S = 5.0


def build_app(settings: Settings, *, transport: Transport | None = None) -> web.Application:
    """The app for ``settings``; ``transport``: send upstream requests through this one (tests' in-process
    fake) instead of the pooled aiohttp session."""
    refuse_unknown_provider_urls(settings)
    check_env_token(settings.admin_token)
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
        transport = gateway.transport
        in_use = getattr(transport, "connections_in_use", None)
        if in_use is not None:  # a transport that counts its own connections (h1 both kinds, pyreqwest its own)
            idle = getattr(transport, "connections_idle", None)
            return PoolGauges(in_use(), idle() if idle is not None else None, settings.upstream_pool_size)
        session = getattr(transport, "session", None)
        return pool_gauges(session.connector if session is not None else None)

    foreground = Foreground()  # requests awaiting a first byte: the request log's drain waits for none to be
    telemetry = Telemetry(settings, engine, metadata_of=public_metadata, pool=pool,
                          lookups=LogLookups(catalog, configs), foreground=foreground)
    access = AccessRegistry(engine, KeyHasher.load(settings), env_admin_token=settings.admin_token)
    limits, limiter = _limits(settings, engine)
    reads = periodic_reads(engine)  # the reload poll's and the readiness probe's, off SQLAlchemy on SQLite
    watch = VersionWatch(reads, reload_interval(settings))
    for snapshot in (catalog, access, limits):
        watch.add(snapshot.follower)
    changes = _change_listener(engine, watch)
    telemetry.registry.register(LimitMetrics(limiter.stats, "redis" if settings.redis_url else "memory"))
    board = _load_board(settings)
    telemetry.registry.register(TargetGauges(board.views))
    gateway = Gateway(settings=settings, guard=guard, configs=configs, catalog=catalog, engine=engine,
                      telemetry=telemetry, access=access, limits=limits, limiter=limiter, watch=watch,
                      changes=changes)
    hosts = HostPolicy.build(settings.host, settings.allowed_hosts)
    writes = WriteBatch()  # the worker's socket writes of a loop turn, sent together (client and upstream)
    writes.before_send = telemetry.seal_answered  # answered requests are journaled before their answers leave
    connections = ConnectionGuard(ConnectionLimits(settings.max_connections, settings.header_timeout_s,
                                                    settings.send_timeout_s), writes)
    edge = edge_middleware(connections, hosts)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[edge])
    app[GATEWAY] = gateway
    app.on_response_prepare.append(_journaling(telemetry))  # answers aiohttp writes: journaled before they leave
    app.on_response_prepare.append(_named)
    app[CONNECTIONS] = connections  # serve.py's listening site puts every connection through it
    app.cleanup_ctx.extend([_store_context(gateway), _access_context(gateway), _catalog_context(gateway, vault),
                            _upstream_context(gateway, transport, board, writes), _limits_context(gateway),
                            _watch_context(gateway, reads), _telemetry_context(gateway),
                            _readiness_context(app, gateway, reads)])
    app[AUDIT_STORE] = engine
    app[ACCESS_ADMIN] = _access_admin(gateway)
    app[CATALOG_ADMIN] = _catalog_admin(gateway, vault)
    add_portkey_catalog_routes(app.router)
    # Portkey's Admin API paths under /v1, before add_routes' /v1 catch-all (passthrough) can claim them.
    add_access_routes(app.router, workspaces="/v1/admin/workspaces", keys="/v1/api-keys", audit="/v1/audit-logs")
    add_reserved_routes(app.router, PORTKEY_ADMIN_PATHS)
    native_routes = add_routes(app)
    if not settings.access_log:  # aiohttp's access log sees only the requests aiohttp serves
        app[NATIVE] = NativeServer(app, edge, native_routes, connections, idle_timeout_s=settings.idle_timeout_s,
                                   body_timeout_s=settings.body_timeout_s, writes=writes, foreground=foreground)
    add_probe_routes(app.router)
    add_metrics_route(app)
    services = _admin_services(gateway, vault)
    admin = admin_app(services)
    add_access_routes(admin.router, workspaces="/workspaces", keys="/api-keys", audit="/audit-logs", patch=True)
    add_log_routes(admin)
    add_limit_routes(admin)
    app.add_subapp(ADMIN_PREFIX, admin)
    app.router.add_get(DASHBOARD_PREFIX, to_dashboard)
    verifier = first_match([admin_token_verifier(services.auth), api_key_verifier(gateway.access)])
    sessions = SessionStore(gateway.engine)  # in the store: every replica knows every sign-in
    app.add_subapp(DASHBOARD_PREFIX, dashboard_app(services, verifier, key_renewal(gateway.access, services.auth),
                                                      sessions))
    return app


def reload_interval(settings: Settings) -> float:
    """The snapshots' safety-net poll: short on SQLite (one host, no notifications), long on PostgreSQL."""
    if settings.reload_interval_s is not None:
        return settings.reload_interval_s
    return SQLITE_RELOAD_S if is_sqlite(database_url(settings)) else NOTIFIED_RELOAD_S


def _change_listener(engine, watch: VersionWatch) -> ChangeListener | None:
    """On PostgreSQL, one LISTEN connection wakes the reload loop when another process writes; the loop's
    one query then tells which of the three snapshots moved."""
    if is_sqlite(engine):
        return None
    listener = ChangeListener(engine.url)
    for state_id in (CATALOG_STATE_ID, ACCESS_STATE_ID, LIMITS_STATE_ID):
        listener.subscribe(state_id, watch.wake)
    return listener


def _store_context(gateway: Gateway):
    async def context(app: web.Application):
        async with opened_store(gateway.settings, gateway.engine):
            if gateway.changes is not None:
                gateway.changes.start()
            yield
            if gateway.changes is not None:
                await gateway.changes.stop()

    return context


def _access_context(gateway: Gateway):
    async def context(app: web.Application):
        await gateway.access.start()
        settings = gateway.settings
        print(startup_notice(settings.auth_mode, settings.host, gateway.access.snapshot.has_keys), flush=True)
        yield

    return context


def _catalog_context(gateway: Gateway, vault: Vault):
    async def context(app: web.Application):
        await refuse_a_new_key_beside_lost_ones(gateway.engine, vault)  # before the catalog decrypts a thing
        # Registered providers' hosts are the operator's explicit allow entries for the SSRF guard.
        gateway.catalog.on_change(lambda snapshot: gateway.guard.set_extra_allows(snapshot.allow_entries))
        await gateway.catalog.start()
        yield

    return context


def _load_board(settings: Settings) -> LoadBoard:
    """Least-busy's figures, per process; a target ejected for failing is retried after one probe interval."""
    interval = settings.probe_interval_s or 2.0
    # A report is stale once the probes that should have refreshed it cannot have: three intervals, or one
    # interval and a whole probe timeout (a slow /metrics scrape) when that is longer.
    stale_s = max(3 * interval, interval + settings.probe_timeout_s, 1.0)
    policy = BoardPolicy(stale_s=stale_s, eject_after=settings.least_busy_eject_after,
                         eject_s=interval, unhealthy_after=settings.probe_unhealthy_threshold,
                         healthy_after=settings.probe_healthy_threshold)
    return LoadBoard(time.monotonic, policy)


def refuse_unknown_provider_urls(settings: Settings) -> None:
    """A typo in SLUICEGATE_PROVIDER_URL_<ID> (``_OPENAPI``) must not leave that provider's requests going to
    its public URL, past the egress proxy the operator meant to route them through."""
    unknown = sorted(set(settings.provider_base_urls) - set(registry.PROVIDERS))
    if unknown:
        names = ", ".join(PROVIDER_URL_PREFIX + provider.upper().replace("-", "_") for provider in unknown)
        raise ValueError(f"{names}: no such provider (known: {', '.join(registry.PROVIDERS)})")


def _journaling(telemetry: Telemetry):
    """aiohttp's hook before it writes an answer's head: the requests answered so far are journaled first."""

    async def journal_answered(request: web.Request, response: web.StreamResponse) -> None:
        telemetry.seal_answered()

    return journal_answered


async def _named(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's hook before it writes an answer's head: the gateway's name in ``Server``, in place of aiohttp's
    (which it has set by then)."""
    response.headers["Server"] = SERVER_NAME


def _upstream_context(gateway: Gateway, given: Transport | None, board: LoadBoard, writes: WriteBatch):
    async def context(app: web.Application):
        settings = gateway.settings
        guard = gateway.guard
        transport = gateway.transport = given or _transport(settings, guard, writes)
        builder = RequestBuilder(guard, catalog=gateway.catalog, provider_urls=settings.provider_base_urls)
        breaker, peer = _breaker(settings)
        gateway.dispatcher = Dispatcher(transport, builder, breaker=breaker, board=board,
                                        backoff_scale=settings.retry_backoff_scale,
                                        max_response_bytes=settings.max_upstream_body_bytes,
                                        limits=AttemptLimits(gateway.limiter, gateway.limits))
        prober = Prober(board, transport, guard.check_url, interval_s=settings.probe_interval_s,
                        timeout_s=settings.probe_timeout_s)
        prober.start()
        shared = None
        if settings.redis_url:  # every worker and replica sees the others' in-flight counts
            from .upstream.shared_load import SharedInFlight

            shared = SharedInFlight(board, settings.redis_url)
            shared.start()
        selector = ConfigSelector(gateway.configs, gateway.catalog.saved_config)
        cache = gateway.cache = build_cache(settings, gateway.engine, gateway.dispatcher, gateway.catalog.resolve)
        admit = Admit(gateway.access, gateway.catalog, mode=settings.auth_mode, host=settings.host)
        gateway.pipeline = Pipeline(default_steps(selector, gateway.dispatcher, cache, admit=admit,
                                                  authorize=Authorize(gateway.catalog),
                                                  limit=LimitStep(gateway.limiter, gateway.limits)))
        yield
        await prober.stop()
        if shared is not None:
            await shared.stop()
        if peer is not None:
            await peer.close()
        if cache is not None:
            await cache.close()
        await transport.close()

    return context


def _breaker(settings: Settings) -> tuple[CircuitBreaker, RedisBreakerPeer | None]:
    """The circuit breakers: per process, or shared by every replica through Redis (cluster/breaker.py)."""
    if not settings.redis_url:
        return CircuitBreaker(time.monotonic), None
    from .cluster.breaker import RedisBreakerPeer  # the Redis client is imported only when used

    peer = RedisBreakerPeer(settings.redis_url)
    breaker = CircuitBreaker(time.monotonic, peer=peer)
    peer.bind(breaker)
    peer.start()
    return breaker, peer


def _transport(settings: Settings, guard: Guard, writes: WriteBatch) -> Transport:
    """The upstream HTTP client (SLUICEGATE_UPSTREAM_CLIENT), made inside the worker's loop (after any fork)."""
    if settings.upstream_client == "aiohttp":
        return AiohttpTransport(create_session(settings, guard.resolver(), (guard.client_middleware(),)))
    if settings.upstream_client == "reqwest":
        from .upstream.reqwest import ReqwestTransport  # pyreqwest's Rust core loads only for this client

        return ReqwestTransport(settings, guard)
    return H1Transport(settings, guard, writes)


def _limits(settings: Settings, engine) -> tuple[LimitRegistry, Limiter]:
    """Counters in Redis when SLUICEGATE_REDIS_URL is set, else exact in-process counters whose budget
    usage the registry keeps in the database across restarts."""
    memory = None
    counters: Counters
    if settings.redis_url:
        from .limits.redis_backend import RedisCounters

        counters = RedisCounters(settings.redis_url)
    else:
        counters = memory = MemoryCounters()
    limiter = Limiter(counters, fail_open=settings.limits_fail_open,
                      ttl_ms=int(settings.limits_reservation_ttl_s * 1000),
                      default_completion_tokens=settings.limits_default_max_tokens)
    return LimitRegistry(LimitRepository(engine), memory), limiter


def _limits_context(gateway: Gateway):
    async def context(app: web.Application):
        await gateway.limits.start()
        refuse_per_worker_limits(gateway.settings, gateway.limits.snapshot.any)
        yield
        await gateway.limits.stop()  # after the request log has drained: its records settle usage
        await gateway.limiter.close()

    return context


def _watch_context(gateway: Gateway, reads: PeriodicReads):
    """The snapshots' reload loop, once all three are loaded (it stops before they do)."""
    async def context(app: web.Application):
        gateway.watch.start()
        yield
        await gateway.watch.stop()
        reads.close()  # the readiness probe, which reads too, stopped before (contexts unwind in reverse)

    return context


def refuse_per_worker_limits(settings: Settings, limits_defined: bool) -> None:
    if limits_defined and settings.workers > 1 and not settings.redis_url:
        raise ValueError("usage limits are defined and --workers is above 1, but SLUICEGATE_REDIS_URL is not "
                         "set: each worker would count on its own. Set SLUICEGATE_REDIS_URL (or run one worker)")


def _telemetry_context(gateway: Gateway):
    async def context(app: web.Application):
        await gateway.telemetry.start()
        yield
        await gateway.telemetry.close()  # the server takes no more requests: drain every record

    return context


def _readiness_context(app: web.Application, gateway: Gateway, reads: PeriodicReads):
    """Probes of the store and, when configured, Redis; Redis counts against readiness only while the usage
    limits need it (limits defined, failing closed): the cache and the shared breaker degrade without it."""
    settings = gateway.settings
    redis = None
    probes: dict[str, Callable[[], Awaitable[object]]] = {"store": reads.ping}
    required: dict[str, Callable[[], bool]] = {}
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        probes["redis"] = redis.ping
        required["redis"] = lambda: not settings.limits_fail_open and gateway.limits.snapshot.any
    readiness = app[READINESS] = Readiness(probes, required=required)

    async def context(app: web.Application):
        await readiness.start()
        yield
        await readiness.stop()
        if redis is not None:
            await redis.aclose()

    return context


def _access_admin(gateway: Gateway) -> AccessAdmin:
    engine = gateway.engine
    return AccessAdmin(engine=engine, workspaces=WorkspaceRepository(engine),
                       keys=KeyRepository(engine, gateway.access.hasher),
                       auth=AdminAuth(engine, gateway.settings.admin_token), access=gateway.access,
                       on_write=gateway.access.refresh)


def _catalog_admin(gateway: Gateway, vault: Vault) -> CatalogAdmin:
    check, engine = gateway.guard.check_url, gateway.engine
    return CatalogAdmin(
        engine=engine,
        integrations=IntegrationRepository(engine, vault, check_host=check,
                                           provider_urls=dict(gateway.settings.provider_base_urls)),
        providers=ProviderRepository(engine, vault, check_host=check),
        configs=ConfigRepository(engine, validate=gateway_config_validator(check)),
        on_write=gateway.catalog.refresh,
    )


def _admin_services(gateway: Gateway, vault: Vault) -> AdminServices:
    """What the admin API (catalog providers, saved configs; the request log is added to it), behind the admin
    token, and the dashboard, behind a session, both read and write through."""
    check = gateway.guard.check_url
    return AdminServices(
        providers=ProviderRepository(gateway.engine, vault, check_host=check),
        configs=ConfigRepository(gateway.engine, validate=gateway_config_validator(check)),
        auth=AdminAuth(gateway.engine, gateway.settings.admin_token),
        engine=gateway.engine,
        on_write=gateway.catalog.refresh,
        access=gateway.access,
    )
