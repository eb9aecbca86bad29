"""The OTLP exporter: a bounded span queue, posted to the collector in batches by one task.

The sink's drain task calls ``offer`` once per finished record (never the request path); spans wait in a
bounded deque and go out every FLUSH_INTERVAL_S, or as soon as a full batch is waiting, in one POST each.
A collector that fails (refused, slow, non-2xx) costs the batch: spans are counted as dropped, and one
warning is logged per outage, not per batch. Spans are never retried or spooled: a trace is a diagnostic,
not a record (the request log keeps those). ``close`` flushes what is queued within a short bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .otlp import Span, payload, request_span, traces_url
from .redact import safe_url

log = logging.getLogger("sluicegate.telemetry")

FLUSH_INTERVAL_S = 1.0
BATCH_MAX = 512
QUEUE_MAX = 8192  # about 16 full batches: beyond that the collector is not keeping up, and memory is bounded
POST_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 3.0  # shutdown must not wait on an absent collector for long


class OtlpExporter:
    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None, *,
                 interval: float = FLUSH_INTERVAL_S, batch_max: int = BATCH_MAX, queue_max: int = QUEUE_MAX) -> None:
        self.url = traces_url(endpoint)  # raises on a malformed endpoint, so the gateway refuses to start
        self._shown_url = safe_url(self.url)  # for the log: never user-info or query
        self._headers = {**(headers or {}), "content-type": "application/json"}
        self._interval, self._batch_max, self._queue_max = interval, batch_max, queue_max
        self._queue: deque[Span] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self.up = True
        self.exported = 0
        self.dropped = 0

    # -- called by the sink's drain task ---------------------------------------------------------------

    def offer(self, row: Mapping[str, Any], attempts: list[Mapping[str, Any]]) -> None:
        """Never raises: a span that cannot be built or queued is counted, and logging goes on."""
        if len(self._queue) >= self._queue_max or self._task is None:
            self.dropped += 1
            return
        try:
            self._queue.append(request_span(row, attempts))
        except Exception:  # a bug here must not cost the request log its batch
            log.exception("OTLP export: could not build a span; dropped")
            self.dropped += 1
            return
        if len(self._queue) >= self._batch_max:
            self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        # One session for the exporter's life, apart from the upstream pool: a slow collector must not hold
        # connections that requests need. trust_env stays off: the endpoint is the operator's, as given.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
                                              connector=aiohttp.TCPConnector(limit=2))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-otlp-export")
        log.info("OTLP export on: spans to %s", self._shown_url)

    async def close(self) -> None:
        """Flush what is queued (called after the sink has drained), within CLOSE_TIMEOUT_S."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT_S)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self.dropped += len(self._queue)  # what the bound left behind
        self._queue.clear()
        if self._session is not None:
            await self._session.close()

    # -- the export task -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not (self._closing and not self._queue):
            if not self._closing and len(self._queue) < self._batch_max:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._interval)
            self._wakeup.clear()
            batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
            if batch:
                await self._post(batch)

    async def _post(self, batch: list[Span]) -> None:
        assert self._session is not None
        body = orjson.dumps(payload(batch))
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as response:
                await response.read()  # let the connection be reused
                failure = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except Exception as exc:
            failure = type(exc).__name__
        if failure is None:
            self.exported += len(batch)
            if not self.up:
                log.warning("OTLP collector %s answers again; spans dropped so far: %d", self._shown_url,
                            self.dropped)
            self.up = True
            return
        self.dropped += len(batch)
        if self.up:  # once per outage: a dead collector must not flood the gateway's log
            log.warning("OTLP collector %s failed (%s); dropping spans until it answers", self._shown_url,
                        failure)
        self.up = False


class ExporterMetrics:
    """Prometheus families for the exporter, registered on the app's registry only when export is on."""

    def __init__(self, exporter: OtlpExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        e = self._exporter
        yield CounterMetricFamily("sluicegate_otlp_exported_spans", "Spans accepted by the OTLP collector",
                                  value=e.exported)
        yield CounterMetricFamily("sluicegate_otlp_dropped_spans",
                                  "Spans lost: collector failed, queue full, or left at shutdown", value=e.dropped)
        yield GaugeMetricFamily("sluicegate_otlp_collector_up", "1 while the OTLP collector accepts spans",
                                value=int(e.up))
