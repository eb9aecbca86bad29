"""Running the server: one process on uvloop, or N worker processes sharing the port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from .access.admin_token import announce_admin_token
from .access.mode import key_required
from .app import build_app, refuse_per_worker_limits
from .errors import first_line
from .limits.registry import snapshot_of
from .limits.store import LimitRepository
from .server.appkeys import GATEWAY
from .server.connections import CONNECTIONS, GuardedSite
from .server.native import NATIVE
from .server.protocol_log import ProtocolLog
from .server.readiness import READINESS, QuietProbesAccessLogger
from .settings import Settings
from .store import opened_store
from .store.engine import StoreUnwritable, with_driver_errors
from .upstream.policy import listens_on_loopback
from .vault import VaultError

# What an operator can fix: a wrong or loose master key, credentials that do not decrypt (named), an
# unreachable database or one that cannot be written, a malformed allow-list entry, a port already in use.
STARTUP_ERRORS = (VaultError, SQLAlchemyError, StoreUnwritable, ValueError, OSError)

log = logging.getLogger("sluicegate")

# The collector's young generation is scanned after every 700 net container allocations by default. Under
# load that is every few requests, and each pass walks every object of the requests in flight, which
# survive it: measured at c=50, 259 young passes (0.6 ms each) and 23 older ones per 7,500 requests, ~26 µs
# of each request and pauses of 0.6-2.5 ms at the p99. A request's objects are freed by reference counting
# (the count of net allocations barely grows: no pass at all in the same load with this threshold), so a
# larger young generation costs little memory and leaves the passes to the rare cycles.
GC_THRESHOLDS = (50_000, 10, 10)
HEAD_FIELD_MAX = 16 * 1024  # one header line or the request line (see make_runner)


def banner(settings: Settings) -> str:
    url = f"http://{_url_host(settings.host)}:{settings.port}"
    return (
        f"sluicegate listening on {url} (workers: {settings.workers})\n"
        f"Try it:\n"
        f"  curl {url}/v1/chat/completions \\\n"
        f"    -H 'content-type: application/json' \\\n"
        f"    -H 'x-portkey-provider: openai' \\\n"
        f"    -H 'x-portkey-custom-host: http://127.0.0.1:8000/v1' \\\n"
        f"    -d '{{\"model\": \"my-model\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'\n"
    )


def exposure_warning(settings: Settings) -> str | None:
    """What start-up says about a gateway reachable beyond this machine (None on loopback): a loud warning
    when /v1 takes requests without an API key (SLUICEGATE_AUTH=off), else a note, since a key is then
    required on every /v1 request (access/mode.py decides)."""
    if listens_on_loopback(settings.host):
        return None
    names = ", ".join(settings.allowed_hosts) or "none listed"
    hosts = f"Host names answered for: loopback names, IP addresses, and SLUICEGATE_ALLOWED_HOSTS ({names})."
    if key_required(settings.auth_mode, settings.host, has_keys=False):
        return (f"NOTE: sluicegate listens on {settings.host}, beyond loopback; /v1 requires a gateway API key.\n"
                f"NOTE: {hosts}\n")
    return (
        f"WARNING: sluicegate listens on {settings.host}, beyond loopback, with SLUICEGATE_AUTH=off: /v1\n"
        f"WARNING: takes requests without an API key, so anyone who can reach port {settings.port} can send\n"
        f"WARNING: requests with every credential stored in the vault (catalog @providers). Require keys\n"
        f"WARNING: (SLUICEGATE_AUTH=auto or required), or keep the port behind a firewall or a proxy that\n"
        f"WARNING: authenticates. {hosts}\n"
    )


def _announce(settings: Settings) -> None:
    print(banner(settings), flush=True)
    warning = exposure_warning(settings)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve_forever(settings: Settings, *, reuse_port: bool, announce: bool = True,
                        ready: Callable[[], None] | None = None) -> None:
    gc.disable()  # start-up builds long-lived objects: passes over them would find nothing to free
    try:
        app = build_app(settings)
        runner = make_runner(app, settings)
        async with _cleaned_up_on_failure(runner):  # a cache that cannot be built, a vault key that does not fit
            await runner.setup()
    finally:
        # Everything built so far (modules, SQLAlchemy, the app, the catalog) lives as long as the process:
        # keep it out of the collector's full passes. Under load those ran about once a second and walked
        # all of it (~100 ms each, measured); the request log's short-lived records made them more frequent.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.enable()
    raise_open_files_limit(2 * settings.max_connections + 256)  # each client may hold an upstream connection
    site = GuardedSite(runner, app[CONNECTIONS], settings.host, settings.port, reuse_port=reuse_port,
                       backlog=1024, native=app.get(NATIVE))
    async with _cleaned_up_on_failure(runner):  # the port is taken (or refused)
        await site.start()
    if announce:
        # Only now, with everything started: a start that failed after printing a token "shown once" (a vault
        # key missing, a cache without its Redis) left it stored, and the next start printed none.
        await announce_admin_token(app[GATEWAY].engine, settings.admin_token)
        _announce(settings)
    if ready is not None:  # a worker tells its supervisor, which announces once every worker is bound
        ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        # Unready at once, so a load balancer stops sending here; keep serving for drain_delay_s while it
        # notices (its probe interval), then stop accepting and drain.
        app[READINESS].drain()
        if settings.drain_delay_s:
            await asyncio.sleep(settings.drain_delay_s)
    finally:
        # Requests in flight get drain_timeout_s to finish; then they are cancelled (a stalled stream is
        # cut, its upstream closed) so that shutdown goes on, and the log sink still drains their records.
        loop.call_later(settings.drain_timeout_s, app[CONNECTIONS].cancel_requests)
        await stop_serving(runner)


@contextlib.asynccontextmanager
async def _cleaned_up_on_failure(runner: web.AppRunner) -> AsyncIterator[None]:
    """Close what set-up started (the store, the request log) before a failure to start is reported, rather
    than leaving those contexts to the garbage collector at exit, which printed a traceback of their
    generators above "cannot start"."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        raise


class ShutdownFailed(Exception):
    """A step of shutdown failed after the gateway had served: ``run`` says so, not that it cannot start.
    Its text is the failure's first line (the rest of a database error may hold a statement's parameters)."""


async def stop_serving(runner: web.AppRunner) -> None:
    """Stop accepting, wait for the requests in flight, run the cleanup contexts (aiohttp runs every one of
    them even when one fails, then raises)."""
    try:
        await runner.cleanup()
    except Exception as exc:
        said = first_line(exc)[:300]
        raise ShutdownFailed(f"{type(exc).__name__}: {said}" if said else type(exc).__name__) from exc


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    # handler_cancellation: a client that disconnects cancels its handler, which aborts the upstream call.
    # auto_decompress off: server/bodies.py decodes request bodies itself, in bounded slices.
    # shutdown_timeout: only a backstop; the drain bound is enforced in serve_forever (aiohttp alone
    # would wait twice it).
    # keepalive_timeout: how long a connection may sit idle between requests (server/connections.py
    # bounds the rest: request heads, the number of connections).
    # access_log_class: the access log leaves out /livez and /readyz.
    # logger: aiohttp's own log of bad requests, cut to one line without the request's bytes (secrets).
    # max_field_size, max_line_size: an inline x-portkey-config of many targets outgrows aiohttp's 8,190
    # bytes; Portkey's Node server takes 16 KiB of head, so a config that works there works here.
    return web.AppRunner(app, handler_cancellation=True, access_log=log if settings.access_log else None,
                         max_field_size=HEAD_FIELD_MAX, max_line_size=HEAD_FIELD_MAX,
                         access_log_class=QuietProbesAccessLogger,
                         logger=ProtocolLog(), auto_decompress=False,
                         shutdown_timeout=settings.drain_timeout_s + 5, keepalive_timeout=settings.idle_timeout_s)


def raise_open_files_limit(wanted: int) -> None:
    """Lift the soft limit on open files towards ``wanted`` (never above the hard limit): running out of
    descriptors stops a server from accepting anything, which is what the connection cap is there to avoid."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("open files are limited to %d: fewer than SLUICEGATE_MAX_CONNECTIONS needs (%d)",
                    target, wanted)


def check_port_free(host: str, port: int, *, reuse_port: bool) -> None:
    """Bind the address the server will listen on, and let it go: a port already taken fails the start here,
    before the store is written to. It was found only after set-up, which had generated, stored and printed a
    first admin token ("shown once") for a server that never ran. The real bind can still lose a race."""
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server binds
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:  # in the words asyncio's bind uses
                raise OSError(exc.errno, f"error while attempting to bind on address {address[:2]!r}: "
                                         f"{(exc.strerror or 'refused').lower()}") from None


def run(settings: Settings, *, worker: bool = False) -> int:
    try:
        if not worker:  # a worker's supervisor checked it (its siblings share the port)
            check_port_free(settings.host, settings.port, reuse_port=settings.workers > 1)
        if settings.workers > 1 and not worker:
            _run_loop(prepare_store(settings))  # once, before the workers race for it
            return supervise(settings)
        _run_loop(serve_forever(settings, reuse_port=worker or settings.workers > 1, announce=not worker,
                                ready=_worker_ready() if worker else None))
    except ShutdownFailed as exc:
        log.debug("shutdown failed", exc_info=exc.__cause__)
        print(f"sluicegate: shutdown did not complete: {exc}", file=sys.stderr)
        return 1
    except with_driver_errors(*STARTUP_ERRORS) as exc:
        log.debug("startup failed", exc_info=True)
        print(f"sluicegate: cannot start: {first_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
    return 0


async def prepare_store(settings: Settings) -> None:
    """Migrate the store before any worker starts (the admin token comes once every worker listens)."""
    async with opened_store(settings) as engine:
        if settings.workers > 1 and not settings.redis_url:
            version, rows = await LimitRepository(engine).all()
            refuse_per_worker_limits(settings, snapshot_of(version, rows).any)


async def _admin_token_announced(settings: Settings) -> None:
    async with opened_store(settings) as engine:
        await announce_admin_token(engine, settings.admin_token)


def _run_loop(main) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(main)
    else:
        uvloop.run(main)


def supervise(settings: Settings) -> int:
    """Start N worker processes on the same port, announce the server once every one of them is bound, and
    relay termination signals to them. A worker that exits before it is bound (its "cannot start" is on
    stderr) stops the others: the supervisor then exits 2 without ever saying it listens."""
    workers: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pipes = []
    try:
        for _ in range(settings.workers):
            read_end, write_end = os.pipe()
            pipes.append(read_end)
            try:
                workers.append(subprocess.Popen(worker_argv(settings), pass_fds=(write_end,),
                                                env={**os.environ, READY_FD_ENV: str(write_end)}))
            finally:
                os.close(write_end)  # the worker holds the only copy: its exit closes the pipe
        if stopping:  # a signal came while they were being started: those started since get it too
            forward(signal.SIGTERM, None)
        bound = _all_ready(pipes)
    except BaseException:
        forward(signal.SIGTERM, None)  # none is left running unsupervised
        raise
    finally:
        for fd in pipes:
            os.close(fd)
    failed = not bound and not stopping
    if bound:
        _run_loop(_admin_token_announced(settings))
        _announce(settings)
    elif failed:
        print("sluicegate: cannot start: a worker exited before it was listening (its reason is above); "
              "stopping the others", file=sys.stderr, flush=True)
        forward(signal.SIGTERM, None)
    codes = [proc.wait() for proc in workers]
    return 2 if failed else max(codes, default=0)


# Set by the supervisor for each worker, never by an operator: the file descriptor of the pipe on which the
# worker writes one byte once it is bound (systemd's sd_notify, in small).
READY_FD_ENV = "SLUICEGATE_WORKER_READY_FD"


def _worker_ready() -> Callable[[], None] | None:
    """The worker's half of the handshake: what tells the supervisor it is bound (None when run by hand)."""
    fd = os.environ.pop(READY_FD_ENV, None)  # not for the processes the worker may start
    if fd is None:
        return None

    def ready() -> None:
        with contextlib.suppress(BrokenPipeError):  # the supervisor gave up on start-up: its SIGTERM follows
            os.write(int(fd), b"1")
        os.close(int(fd))

    return ready


def _all_ready(pipes: list[int]) -> bool:
    """Block until every worker has written its byte (True) or one pipe reached its end without it: that
    worker exited before it was bound (False). Event-driven, no timeout and no polling: the wait costs no
    CPU, and a signal meanwhile runs its handler and the wait goes on (PEP 475)."""
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        waiting = len(pipes)
        while waiting:
            for key, _ in selector.select():
                if not os.read(key.fd, 1):
                    return False
                selector.unregister(key.fd)
                waiting -= 1
    return True


def worker_argv(settings: Settings) -> Sequence[str]:
    argv = [
        sys.executable, "-m", "sluicegate", "serve", "--worker", "--workers", str(settings.workers),
        "--host", settings.host, "--port", str(settings.port), "--data-dir", os.fspath(settings.data_dir),
    ]  # --workers: each worker must know it has siblings (limits without Redis are then refused)
    if settings.log_retention_days is not None:  # a flag, not only env: workers must see it too
        argv += ["--log-retention-days", str(settings.log_retention_days)]
    return argv
