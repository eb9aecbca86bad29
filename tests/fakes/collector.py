"""A fake OpenTelemetry collector: an aiohttp server on 127.0.0.1, in its own thread, that keeps every
OTLP/HTTP JSON export it receives (raw bytes and headers) and answers with a scripted status."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict


class FakeCollector:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[CIMultiDict[str]] = []
        self.status = 200  # what every export is answered with
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeCollector:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def spans(self) -> list[dict[str, Any]]:
        with self._lock:
            bodies = list(self.bodies)
        return [span for body in bodies for rs in orjson.loads(body)["resourceSpans"]
                for ss in rs["scopeSpans"] for span in ss["spans"]]

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Spans matching ``predicate``, waiting (bounded) until there is at least one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.spans() if predicate(s)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching span within {timeout} s; received {len(self.bodies)} exports")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.bodies.append(body)
            self.headers.append(CIMultiDict(request.headers))
        return web.json_response({}, status=self.status)
