"""What ``Guard.client_middleware()`` costs per upstream request (a quick measurement, not a test).

    PYTHONPATH=src python -m tests.ssrf.middleware_cost

1. isolated: aiohttp's middleware wrapper plus the check (``url.origin()``, ``str``, the cached
   ``check_url``), around a handler that does nothing, against calling the handler directly;
2. in a session: sequential keep-alive requests to a loopback aiohttp server, with and without the
   middleware, alternating rounds so that drift hits both alike; the median round.
Loopback only; every loop is bounded by a count.
"""

from __future__ import annotations

import statistics
import time

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.client_middlewares import build_client_middlewares
from yarl import URL

from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy

ISOLATED_CALLS = 200_000
SESSION_REQUESTS = 2_000
ROUNDS = 7


class _Request:
    __slots__ = ("url",)

    def __init__(self, url: URL) -> None:
        self.url = url


async def _handler(req):
    return None


async def isolated_ns(guard: Guard) -> tuple[float, float]:
    """(ns per direct call, ns per call through the guard middleware), built per request as aiohttp does."""
    req, middlewares = _Request(URL("http://127.0.0.1:8000/v1/chat/completions")), [guard.client_middleware()]
    start = time.perf_counter_ns()
    for _ in range(ISOLATED_CALLS):
        await _handler(req)
    direct = (time.perf_counter_ns() - start) / ISOLATED_CALLS
    start = time.perf_counter_ns()
    for _ in range(ISOLATED_CALLS):
        await build_client_middlewares(_handler, middlewares)(req)
    return direct, (time.perf_counter_ns() - start) / ISOLATED_CALLS


async def _round(url: str, middlewares) -> float:
    connector = aiohttp.TCPConnector(use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector, middlewares=middlewares) as session:
        start = time.perf_counter_ns()
        for _ in range(SESSION_REQUESTS):
            async with session.post(url, data=b"{}", allow_redirects=False) as response:
                await response.read()
        return (time.perf_counter_ns() - start) / SESSION_REQUESTS / 1000


async def session_us(guard: Guard) -> tuple[float, float]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", lambda request: web.json_response({"ok": True}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1/chat/completions"
    plain, guarded = [], []
    try:
        for _ in range(ROUNDS):
            plain.append(await _round(url, ()))
            guarded.append(await _round(url, (guard.client_middleware(),)))
    finally:
        await runner.cleanup()
    return statistics.median(plain), statistics.median(guarded)


async def main() -> None:
    guard = Guard(GuardPolicy.from_settings(Settings(host="127.0.0.1")))
    direct, wrapped = await isolated_ns(guard)
    print(f"isolated: direct {direct:.0f} ns, through the middleware {wrapped:.0f} ns, "
          f"added {(wrapped - direct) / 1000:.2f} µs per request")
    plain, guarded = await session_us(guard)
    print(f"session:  {plain:.1f} µs per request without, {guarded:.1f} µs with "
          f"(median of {ROUNDS} rounds of {SESSION_REQUESTS}): {guarded - plain:+.1f} µs")


if __name__ == "__main__":
    uvloop.run(main())
