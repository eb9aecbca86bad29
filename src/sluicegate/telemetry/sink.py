"""The log sink: a bounded in-memory queue, drained in batches to the store by one task.

``submit`` is what the request path calls: an append to a deque and, at most, setting an event. With the
write-ahead journal (journal.py), ``seal`` comes first, before the last bytes of the answer: it drafts the
record's rows there, once (rows.py: what needs the request's secrets), and journals the draft; the drain
task then finishes the rows from it and settles the journal once they are committed. Without it the drain
task drafts and finishes them. Either way it feeds
the metrics, and writes each batch in one transaction, one write at a time, while it finishes the next batch's
rows. While the store is unreachable, batches go to the
bounded local spool instead, the store is probed with the next batch after a growing pause, and once it
answers the spool is replayed a segment at a time between live batches. Records are dropped, counted and
warned about only when the queue is full or the spool is at its bound. ``close`` drains everything that
was submitted (to the store, or the spool).

The drain's work on the event loop (finishing rows, starting a transaction) waits, for a bounded time, until no
request awaits its answer's first byte (foreground.py): a request then has the loop to itself for the part of
its latency its client sees.

The queue is paced: once it holds two full batches (``pace_at``), the drain task has fallen behind the
requests, and a new request waits for it (``wait_for_room``, at most ``pace_wait_s``) before it starts. The
drain shares the event loop with the requests; without pacing, a gateway under sustained load served
requests faster than it finished their rows, and its queue filled up (memory with it) until records were
dropped. Pacing makes the intake follow what the log can write, and keeps the queue's reserve above
``pace_at`` for the requests already running and for a store that stalls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from ..foreground import Foreground
from ..types import CACHE_HIT, CACHE_SEMANTIC_HIT
from .journal import WARN_EVERY_S, Journal
from .metrics import RequestStats, SinkGauges
from .record import RequestRecord
from .spool import Entry, Spool

T = TypeVar("T")

log = logging.getLogger("sluicegate.telemetry")

PROBE_MIN_S = 0.5  # first pause after a failed write; doubles up to PROBE_MAX_S
PROBE_MAX_S = 10.0
WRITE_TIMEOUT_S = 15.0  # a store that takes longer for one batch is treated as unreachable
# A write in flight for longer than this (a lock held elsewhere, a store that hangs) already reads as down on
# /metrics, before it fails: a batch of 1,000 rows takes well under a second.
WRITE_STALL_S = 2.0
# At most one transaction per interval unless a full batch is waiting. Bigger batches cost far less per
# record: SQLite rewrites the same index pages into its WAL at every commit, and each transaction has a
# fixed cost on the event loop. The interval follows the store: FLUSH_PACE times the last write's duration,
# between FLUSH_MIN_S (a quiet gateway: a record is committed within some tens of ms, so a kill -9 loses
# little) and FLUSH_INTERVAL_S (under load, where writes take longer and batching pays).
FLUSH_INTERVAL_S = 0.1
FLUSH_MIN_S = 0.02
FLUSH_PACE = 4.0
# How long the first record after a quiet spell waits before its batch is taken. A client that waited for its
# answer often sends its next request as soon as it has it (an agent's next turn, a benchmark's loop); a batch
# taken and committed at once landed on that request's start, and cost the first token of a stream that
# followed another 0.1-0.2 ms at the median (docs/benchmarks.md, "The log's first record after a quiet
# spell"). Once the wait is over, the foreground wait (QUIET_WAIT_S) holds the batch until such a request
# has its first byte.
FOLLOW_UP_S = 0.02
# A batch smaller than this waits for FLUSH_INTERVAL_S: a commit's cost is mostly fixed (a commit of three rows
# took ~0.5 ms of the writer thread), and a quiet gateway that committed a few rows every 20 ms spent twice the
# writer's time a record, with the commits, on the other core, behind most of its slowest first tokens
# (docs/benchmarks.md, "One stream's time to first token: the log's commits"). The journal keeps what a crash
# would lose to the wait, so it only delays when a record can be queried. A busier gateway fills this many
# rows within FLUSH_MIN_S and keeps the pace that follows its writes: larger batches would bind more
# parameters at once, and the event loop waits for the writer thread's GIL while it does.
FLUSH_ROWS_MIN = 32
# The longest the drain task builds rows before it yields to the event loop. A row takes some µs to tens of µs,
# and a request that arrives meanwhile waits for the slice to end: slices of 64 records (2-3 ms) were most
# of the gateway's p99 at one connection.
BUILD_SLICE_S = 0.0002
# How long, at most, a batch's rows and its transaction wait for a moment when no request awaits its answer's
# first byte (foreground.py), counted from when the batch is taken. A quiet gateway's requests leave the
# foreground within some ms; a busy one may never be quiet, and its batches are built after this bound as they
# were before.
QUIET_WAIT_S = 0.01
PACE_BATCHES = 2  # the queue is paced once it holds this many full batches (and at most half its capacity)


class Writer(Protocol):
    async def write(self, entries: list[Entry]) -> None:
        """Insert the entries in one transaction, ignoring ids already stored. Raise StoreUnavailable (or
        any connection error) when the store cannot be reached; RejectedBatch when it refused the data."""

    async def close(self) -> None:
        """Release the writer's own resources (after the last write)."""


# Told of every finished row (already scrubbed) with its attempt rows; must not raise (the OTLP exporter).
RowObserver = Callable[[Mapping[str, Any], list], None]


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer: spool and try again later."""


class RejectedBatch(Exception):
    """The store refused ``count`` records of the batch (a schema or data error): retrying cannot help.
    The rest of the batch is stored."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class Rows(Protocol):
    """Makes a record's rows in two steps (rows.RowBuilder)."""

    def draft_line(self, record: RequestRecord) -> tuple[dict[str, Any], bytes | None]:
        """The record's draft (scrubbed, storable) and its JSON line (None when it cannot be JSON)."""

    def finish(self, draft: dict[str, Any]) -> Entry:
        """A draft's rows (also for drafts read back from a journal)."""


class Sink:
    def __init__(
        self,
        rows: Rows,
        writer: Writer,
        spool: Spool,
        stats: RequestStats,
        *,
        queue_max: int,
        batch_max: int,
        clock: Callable[[], float] = time.monotonic,
        on_row: RowObserver | None = None,
        journal: Journal | None = None,
        pace_wait_s: float = WRITE_STALL_S,
        foreground: Foreground | None = None,
    ) -> None:
        self._rows, self._writer, self._spool, self._stats = rows, writer, spool, stats
        self._on_row = on_row
        self.journal = journal
        self._queue: deque[RequestRecord] = deque()
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._in_flight: asyncio.Task | None = None  # the batch being written (_store), at most one
        self._accepting = False  # between start and the end of the drain task
        self.store_up = True
        # Up again by a probe alone (an empty write), not yet by a write that stored something: a store that
        # takes a probe but refuses writes (a read-only WAL) flapped up and down twice a second, each time
        # saying it was back and resetting the probe's pause.
        self._on_probation = False
        self._probe_at = 0.0
        self._pause = PROBE_MIN_S
        self.written = self.spooled = self.replayed = 0
        self.dropped: dict[str, int] = {}
        self.spool_error: str | None = None  # why the last spool write failed; None once one succeeds
        self._warned_at = -WARN_EVERY_S
        self._flushed_at = -FLUSH_INTERVAL_S
        self._woke_at = -FOLLOW_UP_S  # when the drain task last woke from idling (to new records, mostly)
        self._writing_since: float | None = None
        self._interval = FLUSH_MIN_S  # between two transactions; follows how long writes take
        self.pace_at = max(1, min(PACE_BATCHES * batch_max, queue_max // 2))
        # A stalled store must not hold requests for longer than it takes to read as down (WRITE_STALL_S).
        self._pace_wait_s = pace_wait_s
        self._room = asyncio.Event()  # set while the queue is below pace_at
        self._room.set()
        self.paced = 0  # requests that waited for the drain task
        self.paced_seconds = 0.0
        self._replay_at = 0.0  # no replay before this: the last one failed for a reason other than the store
        self._replay_error: str | None = None  # why the last replay failed (said once); None once one succeeds
        self._drop_detail: str | None = None  # what the next warning about drops says of the last one
        self._foreground = foreground  # the requests awaiting a first byte; None: nothing to wait for

    # -- the request path ------------------------------------------------------------------------------

    def seal(self, record: RequestRecord) -> None:
        """With a journal, before the client has the last bytes of its answer: draft the record's rows (the
        only time they are drafted) and journal the draft. Never raises; a record sealed once stays as it was."""
        self.seal_many([record])

    def seal_many(self, records: list[RequestRecord]) -> None:
        """``seal`` for records whose answers are ready together: drafted one after the other, journaled with
        one write (both cost less per record than one record between two requests: docs/benchmarks.md)."""
        if self.journal is None:
            return
        drafted_records, lines = [], []
        for record in records:
            if record.sealed:
                continue
            record.sealed = True
            drafted = self._drafted(record)
            if drafted is not None:
                record.draft, line = drafted
                record.release()
                drafted_records.append(record)
                lines.append(line)
        if lines:
            for record, segment in zip(drafted_records, self.journal.append_many(lines), strict=True):
                record.journaled = segment

    def submit(self, record: RequestRecord) -> None:
        """Never blocks, never raises: a full queue (or a closed sink) costs the record, counted."""
        if self._accepting and len(self._queue) < self._queue_max:
            self._queue.append(record)
            if not self._wakeup.is_set():
                self._wakeup.set()
            if len(self._queue) >= self.pace_at:
                self._room.clear()
            return
        self._drop("queue_full" if self._accepting else "closed", 1)
        self._settle_journal([record])

    def behind(self) -> bool:
        """Is the drain task a full pace behind the requests (a new request should ``wait_for_room``)?"""
        return not self._room.is_set()

    async def wait_for_room(self) -> None:
        """Return once the queue is below ``pace_at`` again, or after ``pace_wait_s``; counted."""
        if self._room.is_set():
            return
        self.paced += 1
        started = self._clock()
        try:
            async with asyncio.timeout(self._pace_wait_s):
                await self._room.wait()
        except TimeoutError:
            pass  # the store stalls: go on (the queue's reserve above pace_at takes the records meanwhile)
        finally:
            self.paced_seconds += self._clock() - started

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.journal is not None:
            await asyncio.to_thread(self.journal.open)
        await asyncio.to_thread(self._spool.open)  # adopts what dead processes left in the journal
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-log-sink")

    async def close(self) -> None:
        """Drain every submitted record (SIGTERM path), then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._writer.close()
        await asyncio.to_thread(self._spool.close)
        if self.journal is not None:  # every record is settled by now: its segments go
            self.journal.close()

    def gauges(self) -> SinkGauges:
        return SinkGauges(
            queue_depth=len(self._queue), queue_capacity=self._queue_max, written=self.written,
            spooled=self.spooled, replayed=self.replayed, spool_bytes=self._spool.bytes,
            dropped=dict(self.dropped), store_up=self.store_up and not self._on_probation and not self._stalled(),
            spool_up=self.spool_error is None,
            journal_up=self.journal is None or self.journal.error is None,
            paced=self.paced, paced_seconds=self.paced_seconds,
        )

    def _stalled(self) -> bool:
        since = self._writing_since
        return since is not None and self._clock() - since > WRITE_STALL_S

    # -- the drain task --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if await self._step():
                    self._accepting = False
                    self._room.set()  # nothing will drain the queue now: let waiting requests go on
                    return
            except Exception:  # a bug here must not stop logging for the rest of the process's life
                log.exception("request log sink: unexpected error; continuing")
                await asyncio.sleep(PROBE_MIN_S)

    async def _step(self) -> bool:
        """One unit of work; True when closed and drained."""
        if self.store_up and self._spool.pending and not self._closing and self._clock() >= self._replay_at:
            await self._written()  # one write at a time: the batch in flight first
            try:
                await self._replay_one()
            except Exception as exc:  # a spool that cannot be replayed must not hold up the live records
                self._replay_failed(exc)
        if not self._queue:
            if self._closing:
                await self._written()
                return True
            in_flight = self._in_flight
            if in_flight is not None and not in_flight.done():
                self._wakeup.clear()
                await self._wakeup.wait()  # a new record, or the end of the write (_store sets it)
                return False
            await self._written()
            await self._idle()
            self._woke_at = self._clock()
            return False
        await self._let_fill(self._interval)
        if len(self._queue) < FLUSH_ROWS_MIN:  # a quiet gateway: a few rows are not worth a commit yet
            await self._let_fill(FLUSH_INTERVAL_S)
        self._flushed_at = self._clock()
        batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
        if len(self._queue) < self.pace_at:
            self._room.set()
        # Built while the batch before it is still being written: one after the other, the writer thread idled
        # while the loop built rows and the loop's drain idled while the writer wrote, and under load the queue
        # grew until requests were paced (docs/benchmarks.md, "The request log's batches, pipelined").
        entries = await self._entries(batch)
        await self._written()  # one write at a time, in the order the batches were taken
        await self._quiet()  # the writer's thread shares the machine's cores with the requests
        self._in_flight = asyncio.get_running_loop().create_task(self._store(batch, entries))
        return False

    async def _let_fill(self, interval: float) -> None:
        """Wait until ``interval`` has passed since the last batch was taken and FOLLOW_UP_S since the drain
        task woke from idling, unless a full batch is waiting (or the sink is closing)."""
        pause = max(self._flushed_at + interval, self._woke_at + FOLLOW_UP_S) - self._clock()
        if pause > 0 and len(self._queue) < self._batch_max and not self._closing:
            await asyncio.sleep(pause)

    async def _store(self, batch: list[RequestRecord], entries: list[Entry]) -> None:
        try:
            await self._deliver(entries)
        except Exception:
            # A bug must not lose records uncounted; their journal lines stay, replayed at the next start.
            self._drop("unexpected", len(entries))
            raise
        finally:
            self._wakeup.set()  # a drain task with an empty queue waits for this write's end
        self._settle_journal(batch)  # stored, spooled or counted as dropped: the journal is done with them

    async def _written(self) -> None:
        """Wait for the batch being written, if any (its error, a bug, is raised here: ``_run`` says it)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight

    async def _idle(self) -> None:
        self._wakeup.clear()
        if self.store_up and self._spool.pending and self._clock() >= self._replay_at:
            # Segments are ready (a dead process's, this one's from an outage): the next step replays the
            # next one. Waiting here left all but the first unreplayed until a request came.
            await asyncio.sleep(0)
            return
        if self.store_up or not self._spool.pending:
            relook = self._spool.relook_in()  # segments another process held: look again when due
            deferred = self._replay_at - self._clock()
            if deferred > 0 and self._spool.pending:  # the last replay failed: nothing is replayed before then
                relook = deferred
            try:
                await asyncio.wait_for(self._wakeup.wait(), relook)
            except TimeoutError:
                pass  # the next step replays them if their holder let go
            return
        # Down with records spooled: wake up in time to probe the store, even if no request comes.
        try:
            await asyncio.wait_for(self._wakeup.wait(), max(0.0, self._probe_at - self._clock()))
        except TimeoutError:
            await self._probe()

    async def _entries(self, batch: list[RequestRecord]) -> list[Entry]:
        entries = []
        clock = time.perf_counter
        await self._quiet()
        yield_at = clock() + BUILD_SLICE_S
        for record in batch:
            if clock() >= yield_at:  # building a full batch takes tens of ms: let requests run meanwhile
                await asyncio.sleep(0)
                await self._quiet()
                yield_at = clock() + BUILD_SLICE_S
            if record.sealed:  # drafted on its request's path
                draft = record.draft
            else:
                drafted = self._drafted(record)
                draft = drafted[0] if drafted is not None else None
            entry = record.entry = self._finished(draft) if draft is not None else None
            if entry is None:
                _settle(record, None)
                continue
            row, attempts = entry
            _settle(record, row)
            self._stats.observe(row, attempts)
            if self._on_row is not None:
                self._on_row(row, attempts)
            entries.append(entry)
        return entries

    async def _quiet(self) -> None:
        """Wait until no request awaits its first byte, or until QUIET_WAIT_S after the batch was taken
        (``_flushed_at``); closing, not at all."""
        foreground = self._foreground
        if foreground is not None and foreground.count and not self._closing:
            await foreground.quiet(self._flushed_at + QUIET_WAIT_S - self._clock())

    def _drafted(self, record: RequestRecord) -> tuple[dict[str, Any], bytes | None] | None:
        return self._safely(self._rows.draft_line, record)

    def _finished(self, draft: dict[str, Any]) -> Entry | None:
        return self._safely(self._rows.finish, draft)

    def _safely(self, build: Callable[[Any], T], source: Any) -> T | None:
        """A row that cannot be built is a bug: the record is dropped (counted), the log goes on."""
        try:
            return build(source)
        except Exception:
            log.exception("request log sink: could not build a log row; record dropped")
            self._drop("invalid", 1)
            return None

    def _settle_journal(self, records: list[RequestRecord]) -> None:
        if self.journal is not None:
            self.journal.settle(record.journaled for record in records)

    async def _deliver(self, entries: list[Entry]) -> None:
        if not entries:
            return
        if self.store_up or (not self._closing and self._clock() >= self._probe_at):
            refused = await self._write(entries)
            if refused is not None:
                self.written += len(entries) - refused  # each record counted once: written or dropped
                if refused:
                    self._drop("rejected", refused)
                return
        await self._spool_entries(entries)

    async def _write(self, entries: list[Entry]) -> int | None:
        """How many of ``entries`` the store refused (the rest are stored; the caller counts the refused as
        dropped), or None when the store is down (now marked so) and the entries are still ours."""
        self._writing_since = self._clock()
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._writer.write(entries)
        except RejectedBatch as refusal:  # a name of its own: compiled (setup.py), a name has one type
            log.error("request log store refused %d records (%s); they are dropped", refusal.count, refusal)
            return refusal.count  # consumed: spooling data the store refuses would only replay the refusal
        except Exception as exc:
            self._went_down(exc)
            return None
        finally:
            took, self._writing_since = self._clock() - self._writing_since, None
            self._interval = min(FLUSH_INTERVAL_S, max(FLUSH_MIN_S, FLUSH_PACE * took))
        if entries:
            self._came_up()
        elif not self.store_up:  # a probe: worth a try of the spool, not yet "reachable again"
            self.store_up, self._on_probation = True, True
        return 0

    async def _probe(self) -> None:
        """Nothing to write but records spooled: check the store with an empty batch."""
        await self._write([])

    def _went_down(self, exc: BaseException) -> None:
        if self.store_up and not self._on_probation:
            log.warning("request log store unreachable (%s: %s); spooling to %s",
                        type(exc).__name__, str(exc)[:200], self._spool.directory)
            self._pause = PROBE_MIN_S
        else:  # still down: the pause grows
            self._pause = min(self._pause * 2, PROBE_MAX_S)
        self.store_up = self._on_probation = False
        self._probe_at = self._clock() + self._pause

    def _came_up(self) -> None:
        if not self.store_up or self._on_probation:
            log.warning("request log store reachable again; replaying the spool")
        self.store_up, self._on_probation = True, False
        self.spool_error = None  # records are stored again: none is being lost for want of a spool

    async def _spool_entries(self, entries: list[Entry]) -> None:
        try:
            appended = await asyncio.to_thread(self._spool.append, entries)
        except OSError as exc:  # disk full, read-only: the records are lost, and the operator must know
            self._spool_failed(exc)
            self._drop("spool_failed", len(entries))
            return
        self.spool_error = None
        self.spooled += appended.kept
        if appended.full:
            self._drop("spool_full", appended.full)
        if appended.invalid:
            self._drop("invalid", appended.invalid)

    def _spool_failed(self, exc: OSError) -> None:
        if self.spool_error is None:
            log.error("request log spool cannot be written (%s); records are being lost",
                      exc.strerror or type(exc).__name__)
        self.spool_error = exc.strerror or type(exc).__name__

    async def _replay_one(self) -> None:
        segment = await asyncio.to_thread(self._spool.take)
        if segment is None:
            return
        try:
            entries, bad = await asyncio.to_thread(segment.read, self._rows.finish)
        except OSError as exc:  # the file cannot be read: the other segments go on
            await asyncio.to_thread(self._spool.skip, segment, exc.strerror or type(exc).__name__)
            return
        except BaseException:
            segment.release(delete=False)  # a close: never left locked, and open, by a failed replay
            raise
        refused = 0
        for start in range(0, len(entries), self._batch_max):
            batch_refused = await self._write(entries[start:start + self._batch_max])
            if batch_refused is None:
                await asyncio.to_thread(segment.release, delete=False)  # kept whole; stored ids are skipped
                return
            refused += batch_refused
        # Counted once the whole segment is done (a replay cut short is redone): each record once.
        self.replayed += len(entries) - refused
        if bad:
            self._drop("spool_corrupt", bad, f"{segment.path.name}, {segment.refused}")
        if refused:
            self._drop("rejected", refused)
        await asyncio.to_thread(self._spool.replayed, segment)
        self._replay_error = None

    def _replay_failed(self, exc: Exception) -> None:
        """The spool could not be replayed for a reason other than the store (which ``_write`` handles): said
        once (this is a bug), tried again after a pause; live batches go on meanwhile."""
        why = f"{type(exc).__name__}: {str(exc)[:200]}"
        if self._replay_error is None:
            log.error("request log spool cannot be replayed (%s); records are still written, and the spool is "
                      "tried again every %g s", why, PROBE_MAX_S, exc_info=exc)
        self._replay_error = why
        self._replay_at = self._clock() + PROBE_MAX_S

    def _drop(self, reason: str, count: int, detail: str | None = None) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        if detail is not None:
            self._drop_detail = f"{reason}: {detail}"
        now = self._clock()
        if now - self._warned_at >= WARN_EVERY_S:  # a storm of drops must not become a storm of log lines
            self._warned_at = now
            if self._drop_detail is not None:
                log.warning("request log records dropped so far: %s (last %s)", self.dropped, self._drop_detail)
                self._drop_detail = None
            else:
                log.warning("request log records dropped so far: %s", self.dropped)


def _settle(record: RequestRecord, row: dict | None) -> None:
    """Hand the request's usage to its limits (reservations become actual usage; none known: zero).

    A cache hit spent nothing upstream: its row carries the replayed answer's usage (for "saved" in
    analytics), but its budgets are charged zero."""
    on_usage = record.usage_callback()
    if on_usage is None:
        return
    if record.cache_status in (CACHE_HIT, CACHE_SEMANTIC_HIT):
        row = None
    try:
        on_usage(int((row or {}).get("prompt_tokens") or 0), int((row or {}).get("completion_tokens") or 0))
    except Exception:
        log.exception("request log sink: could not settle a request's usage limits")
