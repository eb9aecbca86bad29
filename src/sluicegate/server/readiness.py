"""Liveness and readiness for load balancers and orchestrators: ``GET /livez`` and ``GET /readyz``.

``/livez`` answers 200 whenever the event loop runs a handler at all (a wedged process fails it by not
answering). ``/readyz`` answers 200 while this process should get traffic, and 503 with the reason while
it should not: it is draining (SIGTERM), the store is unreachable, or Redis is unreachable while the usage
limits need it (limits defined and SLUICEGATE_LIMITS_FAIL_OPEN off; the response cache and the shared
circuit breaker degrade without Redis, so they do not make a process unready).

Answers come from the last background probe (every ``PROBE_INTERVAL_S``: a read of the store, see
store/periodic_reads.py; ``PING`` to Redis; each bounded by ``PROBE_TIMEOUT_S``), so a probe request never
touches the database and a storm of probes costs nothing. Neither endpoint needs a credential or says
anything secret (no URL, no driver message: the check's name and "unreachable"), and neither is written to
the request log or the access log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import orjson
from aiohttp import web
from aiohttp.web_log import AccessLogger

from ..tasks import BackgroundTask

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0
LIVEZ, READYZ = "/livez", "/readyz"
PROBE_PATHS = frozenset((LIVEZ, READYZ))
log = logging.getLogger("sluicegate.readiness")

Probe = Callable[[], Awaitable[object]]


class Readiness:
    """``probes``: name → a coroutine that raises when that dependency is unreachable; ``required``:
    name → whether that dependency's failure makes the process unready right now (default: always)."""

    def __init__(self, probes: Mapping[str, Probe], *, required: Mapping[str, Callable[[], bool]] | None = None,
                 interval_s: float = PROBE_INTERVAL_S, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._probes = dict(probes)
        self._required = dict(required or {})
        self._interval, self._timeout = interval_s, timeout_s
        self._up: dict[str, bool] = dict.fromkeys(self._probes, True)
        self._task = BackgroundTask("sluicegate-readiness")
        self.draining = False

    def drain(self) -> None:
        self.draining = True

    def verdict(self) -> tuple[int, dict[str, object]]:
        checks = {name: "ok" if up else "unreachable" for name, up in self._up.items()}
        if self.draining:
            return 503, {"status": "draining", "reason": "the process is shutting down", "checks": checks}
        down = [name for name, up in self._up.items() if not up and self._required.get(name, lambda: True)()]
        if down:
            return 503, {"status": "unavailable", "reason": f"{', '.join(down)} unreachable", "checks": checks}
        return 200, {"status": "ready", "checks": checks}

    async def start(self) -> None:
        await self.probe()  # the first answer is a real one
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def probe(self) -> None:
        results = await asyncio.gather(*(self._one(name, probe) for name, probe in self._probes.items()))
        for name, up in zip(self._probes, results, strict=True):
            if up != self._up[name]:
                log.warning("readiness: %s is %s", name, "reachable again" if up else "unreachable")
            self._up[name] = up

    async def _one(self, name: str, probe: Probe) -> bool:
        try:
            await asyncio.wait_for(probe(), self._timeout)
        except Exception:  # what failed is logged by name on the change; the driver's text may hold a URL
            return False
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.probe()


READINESS = web.AppKey("readiness", Readiness)
_ALIVE = orjson.dumps({"status": "alive"})


async def livez(request: web.Request) -> web.Response:
    return web.Response(body=_ALIVE, content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    status, body = request.app[READINESS].verdict()
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def add_probe_routes(router: web.UrlDispatcher) -> None:
    router.add_get(LIVEZ, livez)
    router.add_get(READYZ, readyz)


class QuietProbesAccessLogger(AccessLogger):
    """aiohttp's access log (SLUICEGATE_ACCESS_LOG) without the probes, which would drown it."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path not in PROBE_PATHS:
            super().log(request, response, time)

