"""Run an aiohttp floor hop the way sluicegate runs today: uvloop, one process, no access log, loopback."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable

import uvloop
from aiohttp import web

CLIENT: web.AppKey = web.AppKey("client", object)  # the hop's pooled upstream client
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def serve_aiohttp(handler: Handler, client_ctx: Callable[[web.Application], AsyncIterator[None]]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    app.cleanup_ctx.append(client_ctx)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop())
