"""The sink with a scripted store: batching, outage → spool → replay exactly once, drops, draining on close."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from sqlalchemy import func, select

from sluicegate.foreground import Foreground
from sluicegate.store.request_logs import request_logs
from sluicegate.telemetry import sink as sink_mod
from sluicegate.telemetry.journal import Journal
from sluicegate.telemetry.metrics import RequestStats
from sluicegate.telemetry.service import store_writer
from sluicegate.telemetry.sink import RejectedBatch, Sink
from sluicegate.telemetry.spool import Spool

from .helpers import builder, entry, record


class FakeStore:
    """Stores rows by id (ignoring ids it has, like ON CONFLICT DO NOTHING); can be cut off."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.batches: list[int] = []
        self.up = True
        self.lose_commit = False  # write, then fail as if the connection died during COMMIT
        self.refuse: set[str] = set()
        self.probes_only = False  # an empty write (a probe) succeeds, a write of rows fails (a read-only WAL)
        self.probes = 0

    async def close(self):
        self.closed = True

    async def write(self, entries):
        await asyncio.sleep(0)
        self.probes += not entries
        if not self.up or (self.probes_only and entries):
            raise ConnectionRefusedError("store down")
        refused = [row for row, _ in entries if row["model"] in self.refuse]
        for row, _ in entries:
            if row["model"] not in self.refuse:
                self.rows.setdefault(row["id"], row)
        if entries:
            self.batches.append(len(entries))
        if self.lose_commit:
            self.lose_commit = False
            raise ConnectionResetError("lost during commit")
        if refused:
            raise RejectedBatch("bad data", len(refused))


@pytest.fixture
def store():
    return FakeStore()


def make_sink(store, tmp_path, *, queue_max=10_000, batch_max=100, spool_bytes=50_000_000):
    return Sink(builder(), store, Spool(tmp_path / "spool", spool_bytes), RequestStats(),
                queue_max=queue_max, batch_max=batch_max)


async def settle(sink, condition, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch):
    monkeypatch.setattr(sink_mod, "PROBE_MIN_S", 0.02)
    monkeypatch.setattr(sink_mod, "PROBE_MAX_S", 0.05)


async def test_batches_and_metrics(store, tmp_path):
    sink = make_sink(store, tmp_path, batch_max=50)
    await sink.start()
    for _ in range(230):
        sink.submit(record())
    await settle(sink, lambda: len(store.rows) == 230)
    assert max(store.batches) <= 50 and len(store.batches) < 230  # batched, never one transaction per record
    await sink.close()
    g = sink.gauges()
    assert g.written == 230 and g.queue_depth == 0 and g.dropped == {}
    series = sink._stats.series[("openai", "m")]
    assert series.by_status == {200: 230} and series.prompt_tokens == 230 * 5


async def test_a_few_rows_wait_for_the_interval_and_go_in_one_commit(store, tmp_path, monkeypatch):
    # A quiet gateway: a commit costs the writer about the same for three rows as for thirty. The first
    # record after a quiet spell is written shortly after (FOLLOW_UP_S); the next ones wait for the interval since.
    monkeypatch.setattr(sink_mod, "FLUSH_INTERVAL_S", 0.4)
    sink = make_sink(store, tmp_path)
    await sink.start()
    sink.submit(record())
    await settle(sink, lambda: store.batches == [1])
    for _ in range(5):
        sink.submit(record())
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.15)
    assert store.batches == [1]  # past the paced interval (20 ms for a fast store), still gathering
    await settle(sink, lambda: len(store.rows) == 6)
    assert store.batches == [1, 5]
    await sink.close()


async def test_enough_rows_keep_the_pace_of_the_writes(store, tmp_path, monkeypatch):
    # A busier gateway is not held for the long interval: its batches follow how long writes take.
    monkeypatch.setattr(sink_mod, "FLUSH_INTERVAL_S", 30.0)
    sink = make_sink(store, tmp_path)
    await sink.start()
    for _ in range(2):
        for _ in range(sink_mod.FLUSH_ROWS_MIN):
            sink.submit(record())
        await settle(sink, lambda: sink.gauges().queue_depth == 0, timeout=3.0)
    await settle(sink, lambda: len(store.rows) == 2 * sink_mod.FLUSH_ROWS_MIN, timeout=3.0)
    await sink.close()


async def test_outage_spools_then_replays_every_record_exactly_once(store, tmp_path):
    sink = make_sink(store, tmp_path)
    await sink.start()
    for _ in range(20):
        sink.submit(record())
    await settle(sink, lambda: len(store.rows) == 20)
    store.up = False
    for _ in range(300):
        sink.submit(record())
        await asyncio.sleep(0)
    await settle(sink, lambda: sink.spooled == 300)
    assert not sink.store_up and len(store.rows) == 20
    assert list((tmp_path / "spool").iterdir())  # on disk meanwhile
    store.up = True
    await settle(sink, lambda: len(store.rows) == 320)  # replayed by the probe, without any new request
    for _ in range(5):
        sink.submit(record())
    await sink.close()
    assert len(store.rows) == 325 and sink.gauges().dropped == {}
    assert sink.replayed == 300 and list((tmp_path / "spool").iterdir()) == []


async def test_a_segment_another_process_held_at_start_is_replayed_once_it_lets_go(store, tmp_path):
    # A restart overlapping the old process's exit: its spool segment is still locked at the first look.
    old = Spool(tmp_path / "spool", 50_000_000)
    old.open()
    entries = [builder().finish(builder().draft_line(record())[0]) for _ in range(7)]
    assert old.append(entries).kept == 7  # holds its current segment, locked, until it closes
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 50_000_000, relook_s=0.1), RequestStats(),
                queue_max=100, batch_max=100)
    await sink.start()
    await asyncio.sleep(0.05)
    assert store.rows == {}  # held: left alone
    old.close()
    await settle(sink, lambda: len(store.rows) == 7)  # no new request, no outage: the look comes by itself
    await sink.close()
    assert sink.replayed == 7 and list((tmp_path / "spool").iterdir()) == []


async def test_every_segment_left_by_dead_processes_is_replayed_on_an_idle_gateway(store, tmp_path):
    """The first segment was replayed at start; the rest waited for a request, however long that was."""
    for _ in range(3):  # three processes that died with records spooled
        dead = Spool(tmp_path / "spool", 50_000_000)
        dead.open()
        assert dead.append([builder().finish(builder().draft_line(record())[0]) for _ in range(5)]).kept == 5
        dead.close()
    sink = make_sink(store, tmp_path)
    await sink.start()
    await settle(sink, lambda: len(store.rows) == 15)  # no request at all
    await sink.close()
    assert sink.replayed == 15 and list((tmp_path / "spool").iterdir()) == []


async def test_a_store_that_takes_probes_but_refuses_writes_stays_down_once_said(store, tmp_path, caplog):
    """Each probe said "reachable again" and reset the pause, the next write "unreachable": two warnings
    twice a second, and a store_up gauge that flapped."""
    sink = make_sink(store, tmp_path)
    await sink.start()
    store.probes_only = True
    with caplog.at_level(logging.WARNING, logger="sluicegate.telemetry"):
        for _ in range(5):
            sink.submit(record())
        await settle(sink, lambda: sink.spooled == 5)
        await asyncio.sleep(0.5)  # ten times the longest pause: flapping would say it again and again
        said = [r.getMessage() for r in caplog.records]
        assert sum("unreachable" in m for m in said) == 1 and not any("reachable again" in m for m in said), said
        assert sink.gauges().store_up is False
        store.probes_only = False
        await settle(sink, lambda: len(store.rows) == 5)
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1
    await sink.close()


async def test_a_commit_lost_with_the_connection_is_not_duplicated(store, tmp_path):
    sink = make_sink(store, tmp_path)
    await sink.start()
    store.lose_commit = True
    for _ in range(10):
        sink.submit(record())
    await settle(sink, lambda: sink.spooled == 10)
    await settle(sink, lambda: sink.replayed == 10)
    await sink.close()
    assert len(store.rows) == 10  # written twice, stored once (ids are the gateway's)


async def test_spool_bound_drops_are_counted_and_warned(store, tmp_path, caplog):
    sink = make_sink(store, tmp_path, spool_bytes=20_000)
    store.up = False
    await sink.start()
    caplog.set_level(logging.WARNING, logger="sluicegate.telemetry")
    for _ in range(100):
        sink.submit(record())
    await settle(sink, lambda: sink.spooled + sink.dropped.get("spool_full", 0) == 100)
    await sink.close()
    assert 0 < sink.spooled < 100 and sink.dropped["spool_full"] == 100 - sink.spooled
    assert "dropped" in caplog.text and "spool_full" in caplog.text
    assert sink.gauges().spool_bytes <= 20_000


async def test_full_queue_drops_instead_of_blocking(store, tmp_path):
    sink = make_sink(store, tmp_path, queue_max=10)
    await sink.start()
    for _ in range(25):  # no await: the drain task cannot run in between
        sink.submit(record())
    assert sink.dropped == {"queue_full": 15}
    await sink.close()
    assert len(store.rows) == 10


class GatedStore(FakeStore):
    """A store whose writes wait until the test opens the gate (a store slower than the requests)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def write(self, entries):
        await self.gate.wait()
        await super().write(entries)


async def test_a_queue_two_batches_behind_holds_new_requests_until_the_drain_catches_up(tmp_path):
    store = GatedStore()
    sink = make_sink(store, tmp_path, queue_max=1_000, batch_max=10)
    assert sink.pace_at == 20  # two full batches
    await sink.start()
    for _ in range(19):
        sink.submit(record())
    # The drain took both batches: the first waits for the store, the second for the first.
    await settle(sink, lambda: sink.gauges().queue_depth == 0)
    assert not sink.behind()
    for _ in range(20):
        sink.submit(record())
    assert sink.behind()
    waiting = asyncio.ensure_future(sink.wait_for_room())
    await asyncio.sleep(0.1)
    assert not waiting.done()  # the store has not written anything: the request still waits
    store.gate.set()
    await asyncio.wait_for(waiting, 2.0)
    assert not sink.behind() and sink.paced == 1 and 0.09 < sink.paced_seconds < 2.0
    await sink.close()
    assert len(store.rows) == 39 and sink.dropped == {}
    gauges = sink.gauges()
    assert (gauges.paced, gauges.paced_seconds) == (1, sink.paced_seconds)


class CountingGatedStore(GatedStore):
    """A gated store that counts the writes it is in at once."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = self.most_at_once = 0

    async def write(self, entries):
        self.writing += 1
        self.most_at_once = max(self.most_at_once, self.writing)
        try:
            await super().write(entries)
        finally:
            self.writing -= 1


async def test_the_next_batch_is_built_while_the_last_one_is_written_and_writes_never_overlap(tmp_path):
    """One after the other, the writer idled while the loop built rows and the drain idled while the writer
    wrote: under load the queue grew until requests were paced."""
    store = CountingGatedStore()
    sink = make_sink(store, tmp_path, batch_max=10)
    await sink.start()
    for _ in range(10):
        sink.submit(record())
    await settle(sink, lambda: store.writing == 1)  # the first batch is being written (held at the gate)
    for _ in range(10):
        sink.submit(record())
    built = sink._stats.series[("openai", "m")].by_status
    await settle(sink, lambda: built.get(200) == 20)  # the second batch's rows are finished meanwhile
    await asyncio.sleep(0.05)
    assert store.rows == {} and store.writing == 1  # ... but not written: one write at a time
    store.gate.set()
    await sink.close()
    assert len(store.rows) == 20 and store.batches == [10, 10] and store.most_at_once == 1
    assert sink.written == 20 and sink.dropped == {}


async def test_a_stalled_store_holds_a_request_only_for_the_pace_bound(tmp_path):
    store = GatedStore()
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 50_000_000), RequestStats(),
                queue_max=100, batch_max=10, pace_wait_s=0.2)
    await sink.start()
    for _ in range(40):
        sink.submit(record())
    assert sink.behind()
    started = asyncio.get_running_loop().time()
    await sink.wait_for_room()
    assert 0.15 < asyncio.get_running_loop().time() - started < 1.0  # bounded: then the request goes on
    assert sink.behind() and sink.paced == 1
    store.gate.set()
    await sink.close()
    assert len(store.rows) == 40 and sink.dropped == {}


async def test_the_pace_is_at_most_half_the_queue_and_nothing_waits_once_closed(store, tmp_path):
    assert make_sink(store, tmp_path, queue_max=30, batch_max=100).pace_at == 15
    sink = make_sink(store, tmp_path, queue_max=30, batch_max=100)
    await sink.wait_for_room()  # not started: nothing to wait for
    await sink.start()
    for _ in range(15):
        sink.submit(record())
    assert sink.behind()
    await sink.close()
    assert not sink.behind()
    await asyncio.wait_for(sink.wait_for_room(), 0.5)
    assert len(store.rows) == 15


async def test_a_sealed_record_lets_go_of_its_request_and_its_limits_still_settle(store, tmp_path):
    """Records waiting for their batch held the whole request (parsed body, answer, attempts) until the batch
    was written, and the loop freed them all there at once; the draft is all the log needs once sealed."""
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 50_000_000), RequestStats(), queue_max=100,
                batch_max=10, journal=Journal(tmp_path / "journal"))
    await sink.start()
    settled: list[tuple[int, int]] = []
    sealed = record()
    assert sealed.call is not None
    sealed.call.on_usage = lambda prompt, completion: settled.append((prompt, completion))
    sink.seal(sealed)
    assert (sealed.ctx, sealed.call, sealed.outcome, sealed.attempts, sealed.tap) == (None,) * 5
    sink.submit(sealed)
    await sink.close()
    assert settled == [(5, 3)]  # the usage the answer reported, read from the draft
    (row,) = store.rows.values()
    assert (row["model"], row["model_answered"], row["status"], row["prompt_tokens"]) == ("m", "m-answered", 200, 5)
    assert orjson.loads(row["request_body"])["messages"] == [{"role": "user", "content": "hi"}]


async def test_close_drains_everything_submitted(store, tmp_path):
    sink = make_sink(store, tmp_path, batch_max=7)
    await sink.start()
    for _ in range(1000):
        sink.submit(record())
    await sink.close()
    assert len(store.rows) == 1000
    sink.submit(record())
    assert sink.dropped == {"closed": 1}


async def test_close_with_the_store_down_spools(store, tmp_path):
    sink = make_sink(store, tmp_path)
    await sink.start()
    store.up = False
    for _ in range(50):
        sink.submit(record())
    await sink.close()
    assert sink.spooled == 50 and not store.rows
    store.up = True
    again = make_sink(store, tmp_path)  # the next start replays what the last one spooled
    await again.start()
    await settle(again, lambda: len(store.rows) == 50)
    await again.close()


async def test_refused_records_are_dropped_alone(store, tmp_path):
    sink = make_sink(store, tmp_path)
    store.refuse = {"poison"}
    await sink.start()
    sink.submit(record(body={"model": "poison", "messages": [{"role": "user", "content": "x"}]}))
    for _ in range(5):
        sink.submit(record())
    await sink.close()
    assert len(store.rows) == 5 and sink.dropped == {"rejected": 1} and sink.store_up
    assert sink.written == 5  # each record counted once: written or dropped


async def test_a_record_that_cannot_be_built_does_not_stop_the_sink(store, tmp_path):
    sink = make_sink(store, tmp_path)
    await sink.start()
    broken = record()
    broken.attempts = [object()]  # not an AttemptRecord: building its rows fails
    sink.submit(broken)
    sink.submit(record())
    await sink.close()
    assert len(store.rows) == 1 and sink.dropped == {"invalid": 1}


async def test_a_batch_lost_to_an_unexpected_error_is_counted(store, tmp_path, monkeypatch):
    sink = make_sink(store, tmp_path)
    store.up = False  # every batch goes to the spool, whose code has a bug (not an OSError: the disk is fine)

    def broken(entries):
        raise RuntimeError("a bug in delivery")

    monkeypatch.setattr(sink._spool, "append", broken)
    await sink.start()
    for _ in range(7):
        sink.submit(record())
    await settle(sink, lambda: sink.dropped.get("unexpected", 0) == 7)
    monkeypatch.undo()
    store.up = True
    await sink.close()
    assert sink.gauges().dropped == {"unexpected": 7}


def spooled_segment(directory, values, name="00000000000000000001-1.jsonl"):
    """A segment a dead process left in the spool: these values as its lines (bytes as they are)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(
        b"".join((v if isinstance(v, bytes) else orjson.dumps(v)) + b"\n" for v in values))


async def stored(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(request_logs))


async def test_spooled_lines_the_store_cannot_take_are_refused_alone_and_counted_once(engine, tmp_path, caplog):
    # Lines of the right outer shape that lack a column made the writer raise KeyError, taken for an outage:
    # "store unreachable" / "reachable again" every 0.5 s, the segment never replayed, every live record
    # spooled until the spool's bound. Now each is refused alone, and each record is counted once.
    good = [entry() for _ in range(5)]
    no_user = entry()
    del no_user[0]["user"]  # a column the store allows NULL in: stored with NULL
    refused = entry()
    refused[0]["latency_ms"] = None  # the store refuses it (NOT NULL)
    no_created = entry()
    del no_created[0]["created_ms"]
    spooled_segment(tmp_path / "spool", [*map(list, good[:2]), [{}, []], no_created, [1, 2], "ab", list(refused),
                                         list(no_user), *map(list, good[2:])])
    writer = store_writer(engine)
    sink = Sink(builder(), writer, Spool(tmp_path / "spool", 50_000_000), RequestStats(), queue_max=100,
                batch_max=100)
    await sink.start()
    for _ in range(10):
        sink.submit(record())
    await settle(sink, lambda: sink.written == 10)
    await sink.close()
    assert await stored(engine) == 16 and sink.store_up
    assert sink.replayed == 6 and sink.dropped == {"spool_corrupt": 4, "rejected": 1}
    assert list((tmp_path / "spool").iterdir()) == []
    assert "unreachable" not in caplog.text and "Traceback" not in caplog.text
    assert "line 3: the row lacks" in caplog.text  # the drops' warning says what the last one was


async def test_a_replay_cut_short_by_an_outage_counts_its_records_once(store, tmp_path):
    kept = [entry(), entry()]
    spooled_segment(tmp_path / "spool", [*map(list, kept), b'[{"id": "torn'])
    store.up = False
    sink = make_sink(store, tmp_path)
    await sink.start()
    await settle(sink, lambda: not sink.store_up)  # the replay failed: the segment is kept whole
    store.up = True
    await settle(sink, lambda: sink.replayed == 2)  # replayed again, whole, by the probe
    await sink.close()
    assert len(store.rows) == 2 and sink.dropped == {"spool_corrupt": 1}


async def test_a_spool_file_that_cannot_be_opened_does_not_stop_the_log(store, tmp_path, caplog):
    # A directory by a segment's name (as a file the gateway may not write): its open failed at every step,
    # before the live batch, so nothing was written again, with a traceback every 0.5 s.
    blocked = tmp_path / "spool" / "00000000000000000001-1.jsonl"
    blocked.mkdir(parents=True)
    kept = entry()
    spooled_segment(tmp_path / "spool", [list(kept)], name="00000000000000000002-1.jsonl")
    sink = make_sink(store, tmp_path)
    await sink.start()
    for _ in range(20):
        sink.submit(record())
        await asyncio.sleep(0.01)
    await settle(sink, lambda: len(store.rows) == 21)  # the live records, and the segment after it
    await sink.close()
    assert sink.written == 20 and sink.replayed == 1 and sink.dropped == {}
    said = [r for r in caplog.records if str(blocked) in r.getMessage()]
    assert len(said) == 1 and "Is a directory" in said[0].getMessage()
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


async def test_a_replay_that_fails_does_not_hold_up_the_live_records(store, tmp_path, caplog):
    kept = entry()
    spooled_segment(tmp_path / "spool", [list(kept)])
    sink = make_sink(store, tmp_path)

    def broken():
        raise RuntimeError("a bug in the spool")

    spool = sink._spool
    spool.take = broken  # on this spool only, until deleted below
    await sink.start()
    for _ in range(30):
        sink.submit(record())
        await asyncio.sleep(0.005)
    await settle(sink, lambda: len(store.rows) == 30)
    assert sum("spool cannot be replayed" in r.getMessage() for r in caplog.records) == 1  # said once
    # Not monkeypatch.undo(): that also restores the long probe pauses, and a replay that had taken the broken
    # take just before would then wait PROBE_MAX_S (10 s) for its next try.
    del spool.take
    sink.submit(record())
    await settle(sink, lambda: kept[0]["id"] in store.rows)  # tried again after a pause
    await sink.close()
    assert len(store.rows) == 32 and sink.replayed == 1 and sink.dropped == {}


async def busy_sink(store, tmp_path, monkeypatch, bound_s):
    """A started sink whose drain waits on a Foreground with one request in it (a bound of ``bound_s``)."""
    monkeypatch.setattr(sink_mod, "QUIET_WAIT_S", bound_s)
    foreground = Foreground()
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 50_000_000), RequestStats(),
                queue_max=10_000, batch_max=100, foreground=foreground)
    await sink.start()
    foreground.enter()
    return sink, foreground


async def test_no_row_is_finished_nor_written_while_a_request_awaits_its_first_byte(store, tmp_path, monkeypatch):
    # On a quiet gateway, the log's work on the loop falls after a request's first byte, not in its way.
    sink, foreground = await busy_sink(store, tmp_path, monkeypatch, 30.0)
    for _ in range(3):
        sink.submit(record())
    await asyncio.sleep(0.2)
    assert sink._stats.series == {} and store.rows == {}  # the batch is taken, its rows wait
    foreground.enter()
    foreground.leave()
    await asyncio.sleep(0.05)
    assert store.rows == {}  # still one request in the foreground
    foreground.leave()
    await settle(sink, lambda: len(store.rows) == 3, timeout=1.0)
    await sink.close()


async def test_a_gateway_that_is_never_quiet_still_has_its_log_written_after_the_bound(store, tmp_path, monkeypatch):
    sink, _ = await busy_sink(store, tmp_path, monkeypatch, 0.1)  # its request never leaves
    started = asyncio.get_running_loop().time()
    sink.submit(record())
    await settle(sink, lambda: len(store.rows) == 1, timeout=2.0)
    assert asyncio.get_running_loop().time() - started >= 0.09
    for _ in range(2):  # and so is every next batch
        sink.submit(record())
    await settle(sink, lambda: len(store.rows) == 3, timeout=2.0)
    await sink.close()


async def test_the_first_record_after_a_quiet_spell_lets_the_next_request_start_first(store, tmp_path, monkeypatch):
    # A client's next request often comes as soon as it has its answer: that answer's record is not written
    # on top of the next request's start, but FOLLOW_UP_S later, and not before that request's first byte.
    monkeypatch.setattr(sink_mod, "FOLLOW_UP_S", 0.3)
    sink, foreground = await busy_sink(store, tmp_path, monkeypatch, 30.0)
    foreground.leave()
    await asyncio.sleep(0.05)  # a quiet gateway
    loop = asyncio.get_running_loop()
    answered = loop.time()
    sink.submit(record())
    foreground.enter()  # the same client's next request, right behind its answer
    await asyncio.sleep(0.15)
    assert sink._stats.series == {} and store.rows == {}  # not at once
    foreground.leave()  # its first byte
    await settle(sink, lambda: len(store.rows) == 1, timeout=2.0)
    assert loop.time() - answered >= 0.29
    await sink.close()


async def test_closing_does_not_wait_for_requests_in_the_foreground(store, tmp_path, monkeypatch):
    sink, _ = await busy_sink(store, tmp_path, monkeypatch, 30.0)
    for _ in range(3):
        sink.submit(record())
    async with asyncio.timeout(2.0):
        await sink.close()
    assert len(store.rows) == 3
