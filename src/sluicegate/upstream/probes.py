"""Active health probes and load scrapes for least-busy targets, in one background task (never on the
request path). The app owns it (app.py starts and stops it); the load board (routing/load.py) is where the
verdicts go and where the targets come from: only base URLs the gateway already sent requests to.

Every ``interval_s``, for each target at once, bounded by ``timeout_s``:
- health: ``GET <base>/models`` (OpenAI-compatible servers all answer it; no credential is sent, so a 401 or a
  404 still proves the server is up). An HTTP answer below 500 passes; a 5xx, a timeout or a refused
  connection fails.
- load: ``GET <origin>/metrics`` (llama.cpp's ``--metrics``, vLLM, TGI); the recognised series
  (routing/server_load.py) become the target's server report. A server without them reports nothing and
  least-busy goes by in-flight counts alone.
Both URLs pass the SSRF guard's request-time check here, and the transport's guarded DNS and per-hop check
like every upstream request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from yarl import URL

from ..errors import InvalidCustomHost
from ..routing.load import LoadBoard, TargetView
from ..routing.server_load import parse_server_load
from ..tasks import BackgroundTask
from .transport import BodyTooLarge, Transport, TransportError

log = logging.getLogger(__name__)

MAX_METRICS_BYTES = 1 << 20
MAX_HEALTH_BYTES = 64 * 1024


class Prober:
    def __init__(self, board: LoadBoard, transport: Transport, check_url: Callable[[str], Any], *,
                 interval_s: float, timeout_s: float,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._board = board
        self._transport = transport
        self._check_url = check_url
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._task = BackgroundTask("sluicegate-probes")
        self.rounds = 0

    def start(self) -> None:
        if self.interval_s > 0:
            self._task.start(self._loop)

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        pause = self.interval_s
        while True:
            await self._sleep(pause)
            started = loop.time()
            try:
                await self.probe_all()
            except Exception:  # a bug here must not end probing for good
                log.exception("health probes failed")
            # A fixed cadence: a round slowed by timeouts does not push the next one back, so a target that
            # fails is seen within one interval (plus the probe's own timeout).
            pause = max(0.0, self.interval_s - (loop.time() - started))

    async def probe_all(self) -> None:
        views = list(self._board.views())
        if views:
            await asyncio.gather(*(self._probe(view) for view in views))
        self.rounds += 1

    async def _probe(self, view: TargetView) -> None:
        passed, error = await self._health(view.base_url)
        self._board.probed(view.key, passed, error)
        if passed:
            text = await self._metrics(view.base_url)
            if text is not None:
                self._board.reported(view.key, parse_server_load(text))

    async def _health(self, base_url: str) -> tuple[bool, str | None]:
        try:
            status, _ = await self._get(base_url.rstrip("/") + "/models", MAX_HEALTH_BYTES)
        except InvalidCustomHost:
            return False, "refused by the SSRF guard"
        except (TransportError, TimeoutError, OSError) as exc:
            return False, type(exc).__name__
        if status >= 500:
            return False, f"HTTP {status}"
        return True, None

    async def _metrics(self, base_url: str) -> str | None:
        try:
            status, body = await self._get(str(URL(base_url).origin() / "metrics"), MAX_METRICS_BYTES)
        except (InvalidCustomHost, TransportError, TimeoutError, OSError, ValueError):
            return None
        return body.decode("utf-8", "replace") if status == 200 and body else None

    async def _get(self, url: str, limit: int) -> tuple[int, bytes]:
        self._check_url(url)
        async with asyncio.timeout(self.timeout_s):
            response = await self._transport.send("GET", url, {"accept": "*/*"}, None)
            try:
                return response.status, await response.read(limit)
            except BodyTooLarge:
                return response.status, b""
