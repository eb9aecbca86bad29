"""Telemetry: everything the request log and the metrics need, built once by app.py and hung off the Gateway.

The request path sees ``begin``, ``log_behind`` and ``wait_for_log`` (a request waits, before it starts, while
the request log is a full pace behind), ``seal`` (before the last bytes of a stream), ``answered`` (an
answer ready to go out) and ``submit`` (a request that failed); the rest (the drain task, retention, the
Prometheus registry) lives here with the app's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..foreground import Foreground
from ..settings import Settings
from ..store.engine import sqlite_file
from .exporter import ExporterMetrics, OtlpExporter
from .journal import Journal
from .metrics import Collector, PoolGauges, RequestStats, build_registry, render
from .pricing import PriceTable
from .record import RequestRecord
from .retention import Retention
from .rows import Lookups, MetadataOf, RowBuilder
from .sink import Sink, Writer
from .spool import Spool
from .sqlite_writer import SqliteWriter
from .writer import AsyncWriter, StoreWriter

SPOOL_DIR = "spool"
JOURNAL_DIR = "journal"


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        metadata_of: MetadataOf,
        pool: Callable[[], PoolGauges | None] = lambda: None,
        lookups: Lookups | None = None,
        writer: Writer | None = None,
        foreground: Foreground | None = None,
    ) -> None:
        self.engine = engine
        self.log_bodies = settings.log_bodies
        self.stats = RequestStats()
        self.prices = PriceTable.load(settings.pricing_file)
        builder = RowBuilder(self.prices, settings.log_body_max_bytes, metadata_of, lookups)
        journal_dir = settings.data_dir / JOURNAL_DIR
        # Journal segments a dead process left are replayed even with the journal now off.
        self.spool = Spool(settings.data_dir / SPOOL_DIR, settings.log_spool_max_bytes, adopts=(journal_dir,))
        self.journal = Journal(journal_dir) if settings.log_journal else None
        # Spans are built from the sink's finished rows, in its drain task: off the request path, and from
        # data that has already been scrubbed.
        self.exporter = (OtlpExporter(settings.otlp_endpoint, settings.otlp_headers)
                         if settings.otlp_endpoint else None)
        self.sink = Sink(builder, writer or store_writer(engine), self.spool, self.stats,
                         queue_max=settings.log_queue_max, batch_max=settings.log_batch_max,
                         on_row=self.exporter.offer if self.exporter is not None else None,
                         journal=self.journal, foreground=foreground)
        self.registry = build_registry(Collector(self.stats, self.sink.gauges, pool))
        if self.exporter is not None:
            self.registry.register(ExporterMetrics(self.exporter))
        days = settings.log_retention_days
        self.retention = Retention(engine, days) if days else None
        self._background: list[asyncio.Task[Any]] = []
        # The serving loop, held from start(): on Python 3.11 each get_running_loop() is a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None
        # Records whose answers became ready in this turn of the event loop, sealed together before any of
        # those answers is written (seal_answered).
        self._answered: list[RequestRecord] = []

    # -- the request path ------------------------------------------------------------------------------

    def begin(self, method: str, route: str, endpoint: str) -> RequestRecord:
        return RequestRecord.begin(method, route, endpoint, self.log_bodies)

    def log_behind(self) -> bool:
        """Has the request log's queue reached its pace (sink.py: two full batches waiting)?"""
        return self.sink.behind()

    async def wait_for_log(self) -> None:
        """Until the request log has caught up (bounded): the intake follows what the log can write."""
        await self.sink.wait_for_room()

    def seal(self, record: RequestRecord) -> None:
        """The record is complete before the client has the last bytes of its answer: with the journal,
        its rows' draft is made and journaled now (a kill -9 after this loses nothing); else nothing to do."""
        if self.journal is not None and not record.sealed:
            record.finish()
            self.sink.seal(record)

    def submit(self, record: RequestRecord) -> None:
        """The request's record, complete: sealed now if it is not yet (before aiohttp writes an answer the
        handler returns or raises), and queued for the store. Never raises."""
        if not record.sealed:
            record.finish()
            self.sink.seal(record)  # a no-op without the journal: the drain task makes the rows
        self.sink.submit(record)

    def answered(self, record: RequestRecord) -> None:
        """``submit`` for a request whose answer is ready to be written. With the journal, its record is
        sealed with the others answered in this turn of the event loop (drafted in a row, one write) by
        ``seal_answered``, which app.py has run before any answer is written: first in every flush of the
        loop turn's write batch (the native edge's answers, write_batch.py) and when aiohttp prepares an
        answer; at the start of the next turn at the latest. So the handler returns at once, and its answer
        still leaves only after its record is journaled."""
        if self.journal is None or record.sealed:
            self.submit(record)
            return
        record.finish()
        if not self._answered:
            (self._loop or asyncio.get_running_loop()).call_soon(self.seal_answered)
        self._answered.append(record)

    def seal_answered(self) -> None:
        """Seal and queue the records answered since it last ran (nothing to do, most of the times it runs).
        Never raises: sealing and submitting do not."""
        if not self._answered:
            return
        batch, self._answered = self._answered, []
        self.sink.seal_many(batch)
        for record in batch:
            self.sink.submit(record)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.exporter is not None:  # before the sink: its first rows may already carry spans
            await self.exporter.start()
        await self.sink.start()
        if self.retention is not None:
            self._background.append(asyncio.create_task(self.retention.run(), name="sluicegate-log-retention"))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sink.close()
        if self.exporter is not None:  # after the sink: its last rows' spans are queued by now
            await self.exporter.close()

    def metrics_text(self) -> bytes:
        return render(self.registry)


def store_writer(engine: AsyncEngine) -> StoreWriter:
    """A SQLite file gets a writer thread of its own (sqlite_writer.py); PostgreSQL the app's async engine."""
    path = sqlite_file(engine)
    return SqliteWriter(engine.dialect, path) if path is not None else AsyncWriter(engine)
