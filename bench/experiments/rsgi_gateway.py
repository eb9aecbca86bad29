"""EXPERIMENT (issue 14): sluicegate's chat-completion route served by granian's RSGI server, not aiohttp's.

Not how the gateway serves (README.md here). The gateway's real application is built and started
(``build_app``; its startup hooks through aiohttp's ``AppRunner.setup()``, which opens no listening site),
and ``POST /v1/chat/completions`` runs the very handler aiohttp routes there, behind the app's own
middleware, through ``rsgi_adapter``. Every other request is a 404. Settings come from the environment,
as for ``sluicegate serve``; ``RSGI_EXPERIMENT_WATCH_DISCONNECT=0`` leaves out the disconnect watch
(``rsgi_adapter.serve``), to measure what it costs:

    SLUICEGATE_DATA_DIR=/tmp/x python -m granian --interface rsgi --host 127.0.0.1 --port N \
        --loop uvloop --no-ws bench.experiments.rsgi_gateway:app
"""

from __future__ import annotations

import gc
import os

# As the CLI does before anything loads pyreqwest (src/sluicegate/cli/__init__.py).
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")

import asyncio
import functools
from typing import Any

from aiohttp import web

from bench.experiments.rsgi_adapter import Handler, serve
from sluicegate.app import build_app
from sluicegate.serve import GC_THRESHOLDS, make_runner
from sluicegate.settings import settings_from_env

ROUTE = ("POST", "/v1/chat/completions")
NOT_FOUND = b'{"error":{"message":"Not Found (this experiment serves POST /v1/chat/completions only)"}}'
JSON = [("content-type", "application/json")]


def routed(app: web.Application, method: str, path: str) -> Handler:
    """The handler aiohttp would run for ``method path``: the route's own, wrapped in the app's middlewares
    as aiohttp wraps them (outermost first)."""
    handler: Handler | None = None
    for resource in app.router.resources():
        if resource.canonical == path:
            handler = next((route.handler for route in resource if route.method == method), None)
            break
    if handler is None:
        raise LookupError(f"no route for {method} {path}")
    for middleware in reversed(app.middlewares):
        handler = functools.partial(middleware, handler=handler)
    return handler


class GatewayRsgi:
    """granian calls ``__rsgi_init__`` in each worker before it serves, with the worker's loop not yet
    running, and ``__rsgi_del__`` once that loop has stopped."""

    def __init__(self) -> None:
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._handler: Handler | None = None
        # Cancel the handler when the client leaves (aiohttp's handler_cancellation); 0 to measure without.
        self._watch = os.environ.get("RSGI_EXPERIMENT_WATCH_DISCONNECT", "1") != "0"

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._runner is not None:
            loop.run_until_complete(self._runner.cleanup())  # the cleanup contexts: drains the request log

    async def _start(self) -> None:
        settings = settings_from_env()
        gc.disable()  # as serve.serve_forever: start-up's long-lived objects frozen out of the collector
        try:
            self._app = app = build_app(settings)
            self._runner = runner = make_runner(app, settings)
            await runner.setup()  # runs the startup hooks (store, catalog, upstream, log sink); no socket
        finally:
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            gc.enable()
        self._handler = routed(app, *ROUTE)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if (scope.method, scope.path) != ROUTE or self._handler is None or self._app is None:
            proto.response_bytes(404, JSON, NOT_FOUND)
            return
        await serve(self._handler, self._app, scope, proto, watch=self._watch)


app = GatewayRsgi()
