"""The write-ahead journal: append, empty or rotate once committed, private files, and what a dead process left
replayed through the spool (torn lines counted; drafts finished into the rows a live sink makes), with the
sink drafting each row once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import orjson
import pytest

from sluicegate.telemetry import sink as sink_mod
from sluicegate.telemetry.journal import Journal
from sluicegate.telemetry.metrics import RequestStats
from sluicegate.telemetry.sink import Sink
from sluicegate.telemetry.spool import Spool

from .helpers import builder, entry, record
from .test_sink import FakeStore, settle


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch):
    monkeypatch.setattr(sink_mod, "PROBE_MIN_S", 0.02)
    monkeypatch.setattr(sink_mod, "PROBE_MAX_S", 0.05)


def line(built) -> bytes:
    return orjson.dumps(built, option=orjson.OPT_APPEND_NEWLINE)


def lines(directory) -> list[list]:
    return [orjson.loads(line) for path in sorted(directory.glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def test_an_appended_record_is_on_disk_at_once_and_gone_once_settled(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.open()
    first, second = entry(), entry()
    held = [journal.append(line(first)), journal.append(line(second))]
    assert [row["id"] for row, _ in lines(tmp_path / "journal")] == [first[0]["id"], second[0]["id"]]
    assert lines(tmp_path / "journal")[0][1] == first[1]  # the attempts travel with their request
    journal.settle(held[:1])
    assert len(lines(tmp_path / "journal")) == 2  # one still waits for its commit: nothing is cut
    journal.settle(held[1:])
    (path,) = (tmp_path / "journal").iterdir()
    assert path.stat().st_size == 0  # emptied in place, and written again from its start
    third = entry()
    journal.settle([journal.append(line(third))])
    journal.append(line(entry()))
    assert [row["id"] for row, _ in lines(tmp_path / "journal")] != [third[0]["id"]]
    assert len(lines(tmp_path / "journal")) == 1
    journal.close()


def test_files_are_private(tmp_path):
    (tmp_path / "journal").mkdir(mode=0o755)
    journal = Journal(tmp_path / "journal")
    journal.open()
    journal.append(line(entry()))
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o700
    (path,) = (tmp_path / "journal").iterdir()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_full_segment_is_rotated_and_deleted_once_its_records_are_settled(tmp_path):
    journal = Journal(tmp_path / "journal", rotate_bytes=1)
    journal.open()
    held = [journal.append(line(entry())) for _ in range(3)]  # always some record in flight: one segment each
    assert len(list((tmp_path / "journal").iterdir())) == 3
    journal.settle(held[:2])
    (left,) = (tmp_path / "journal").iterdir()
    assert left == held[2].segment.path
    journal.settle(held[2:])
    journal.close()
    assert list((tmp_path / "journal").iterdir()) == []


def test_close_keeps_a_segment_with_unsettled_records(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.open()
    kept = entry()
    journal.append(line(kept))
    journal.close()
    assert [row["id"] for row, _ in lines(tmp_path / "journal")] == [kept[0]["id"]]


def test_a_write_the_disk_refuses_costs_no_request(tmp_path, monkeypatch, caplog):
    journal = Journal(tmp_path / "journal")
    journal.open()

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    assert journal.append(line(entry())) is None and journal.append(line(entry())) is None
    assert journal.failed == 2 and journal.error == "No space left on device"
    assert sum("journal cannot be written" in r.message for r in caplog.records) == 1  # said once
    monkeypatch.undo()
    assert journal.append(line(entry())) is not None and journal.error is None
    assert len(lines(tmp_path / "journal")) == 1  # no torn line from the failed ones


def test_a_disk_that_fails_by_turns_is_said_every_ten_seconds_not_every_failure(tmp_path, monkeypatch, caplog):
    # Writes that fail and succeed in turn (a nearly full disk) logged an error line for every failure.
    now = [1000.0]
    journal = Journal(tmp_path / "journal", clock=lambda: now[0])
    journal.open()
    real_write, calls = os.write, [0]

    def every_other_write(fd, data):
        calls[0] += 1
        if calls[0] % 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", every_other_write)
    said = lambda: [r.message for r in caplog.records if "journal cannot be written" in r.message]  # noqa: E731
    written = [journal.append(line(entry())) for _ in range(100)]
    assert sum(segment is not None for segment in written) == 50 and journal.failed == 50
    assert len(said()) == 1 and "(No space left on device; 1 records not journaled" in said()[0]
    now[0] += 9.9
    journal.append(line(entry()))
    assert len(said()) == 1
    now[0] += 0.1
    journal.append(line(entry()))  # written
    journal.append(line(entry()))  # refused, and said: ten seconds have passed
    assert len(said()) == 2 and f"{journal.failed} records not journaled since start" in said()[1]
    assert journal.failed == 52


def _die_with_a_journal(directory, entries) -> None:
    """A real process that journals these entries and is killed (SIGKILL) before it settles them."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        import orjson
        from pathlib import Path
        from sluicegate.telemetry.journal import Journal
        journal = Journal(Path({str(directory)!r}))
        journal.open()
        for entry in orjson.loads(sys.stdin.buffer.read()):
            journal.append(orjson.dumps(entry) + b"\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], input=orjson.dumps(entries), timeout=60)
    assert done.returncode == -9


def test_a_dead_process_journal_is_adopted_by_the_spool_and_a_live_one_left_alone(tmp_path):
    journal_dir, spool_dir = tmp_path / "journal", tmp_path / "spool"
    dead = [entry(), entry()]
    _die_with_a_journal(journal_dir, dead)
    live = Journal(journal_dir)
    live.open()
    live.append(line(entry()))
    spool = Spool(spool_dir, max_bytes=10_000_000, adopts=(journal_dir,))
    spool.open()
    assert spool.pending and spool.bytes > 0
    assert len(list(journal_dir.iterdir())) == 1  # ours: locked, so not taken
    segment = spool.take()
    read, torn = segment.read()
    assert [row["id"] for row, _ in read] == [row["id"] for row, _ in dead] and torn == 0
    spool.replayed(segment)
    assert spool.take() is None and list(spool_dir.iterdir()) == []


async def test_a_dead_process_journal_is_replayed_at_start_torn_line_counted(tmp_path):
    journal_dir = tmp_path / "journal"
    dead = [entry(), entry()]
    _die_with_a_journal(journal_dir, dead)
    (path,) = journal_dir.iterdir()
    with open(path, "ab") as handle:
        handle.write(b'[{"id": "torn')  # a power cut mid-line
    store = FakeStore()
    store.rows[dead[0][0]["id"]] = dead[0][0]  # committed before the kill: stored once all the same
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)),
                RequestStats(), queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    await settle(sink, lambda: sink.replayed == 2)
    await sink.close()
    assert set(store.rows) == {row["id"] for row, _ in dead}
    assert sink.gauges().dropped == {"spool_corrupt": 1}
    assert list(journal_dir.iterdir()) == [] and list((tmp_path / "spool").iterdir()) == []


async def test_drafts_a_dead_process_journaled_are_finished_into_the_rows_a_live_sink_stores(tmp_path):
    """The journal holds drafts: a replay finishes them in a process that never saw the requests, into the
    very rows the live sink would have stored (the answer's usage and model read from the draft)."""
    journal_dir = tmp_path / "journal"
    secret = "sk-dead-secret-0123456789abcdef"
    records = [record(headers={"authorization": f"Bearer {secret}"},
                      body={"model": "m", "messages": [{"role": "user", "content": f"key {secret}"}]}),
               record(), record(status=500, answer={"error": {"message": "broke", "type": "server_error"}})]
    made = builder()
    drafts = [made.draft_line(rec) for rec in records]
    _die_with_a_journal(journal_dir, [orjson.loads(drafted_line) for _, drafted_line in drafts])
    (path,) = journal_dir.iterdir()
    assert secret.encode() not in path.read_bytes()  # drafts are scrubbed: what the file holds is safe
    expected = {row["id"]: (row, attempts) for row, attempts in (made.finish(draft) for draft, _ in drafts)}
    store = FakeStore()
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)), RequestStats(),
                queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    await settle(sink, lambda: sink.replayed == 3)
    await sink.close()
    assert store.rows == {row_id: row for row_id, (row, _) in expected.items()}
    stored = sorted(store.rows.values(), key=lambda row: row["status"])
    assert [row["model_answered"] for row in stored] == ["m-answered", "m-answered", None]
    assert [row["total_tokens"] for row in stored[:2]] == [8, 8]  # read from the answer at replay
    assert (stored[2]["error_type"], stored[2]["error_message"]) == ("server_error", "broke")
    assert secret not in orjson.dumps(stored).decode()
    assert sink.gauges().dropped == {}


class CountingBuilder:
    def __init__(self) -> None:
        self.built = 0
        self._builder = builder()

    def draft_line(self, rec):
        self.built += 1
        return self._builder.draft_line(rec)

    def finish(self, draft):
        return self._builder.finish(draft)


async def test_a_sealed_record_is_built_once_journaled_scrubbed_and_settled_once_committed(tmp_path):
    store, counting = FakeStore(), CountingBuilder()
    journal_dir = tmp_path / "journal"
    sink = Sink(counting, store, Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)),
                RequestStats(), queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    secret = "sk-journal-secret-0123456789abcdef"
    sealed = record(headers={"authorization": f"Bearer {secret}"},
                    body={"model": "m", "messages": [{"role": "user", "content": f"my key is {secret}"}]})
    sink.seal(sealed)
    sink.seal(sealed)  # sealing twice changes nothing
    assert counting.built == 1
    (path,) = journal_dir.iterdir()
    on_disk = path.read_bytes()
    assert sealed.draft["row"]["id"].encode() in on_disk and secret.encode() not in on_disk
    sink.submit(sealed)
    await settle(sink, lambda: sealed.draft["row"]["id"] in store.rows)
    await settle(sink, lambda: path.stat().st_size == 0)  # committed: the journal let it go
    assert counting.built == 1
    sink.submit(record())  # a record that was never sealed is built by the drain task, as without a journal
    await settle(sink, lambda: len(store.rows) == 2)
    assert counting.built == 2
    await sink.close()
    assert list(journal_dir.iterdir()) == []


async def test_records_spooled_during_an_outage_are_settled_too(tmp_path):
    store = FakeStore()
    store.up = False
    journal_dir = tmp_path / "journal"
    sink = Sink(builder(), store, Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)),
                RequestStats(), queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    rec = record()
    sink.seal(rec)
    sink.submit(rec)
    await settle(sink, lambda: sink.spooled == 1)
    (path,) = journal_dir.iterdir()
    assert path.stat().st_size == 0  # durable in the spool: the journal let it go
    store.up = True
    await settle(sink, lambda: rec.entry[0]["id"] in store.rows)
    await sink.close()


def test_records_journaled_together_take_one_write_and_each_its_own_settlement(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "journal")
    journal.open()
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    first, second = entry(), entry()
    held = journal.append_many([line(first), None, line(second)])  # None: a draft that was not JSON
    assert len(writes) == 1 and held[1] is None and held[0] is held[2] is not None
    assert [row["id"] for row, _ in lines(tmp_path / "journal")] == [first[0]["id"], second[0]["id"]]
    assert journal.failed == 1
    journal.settle(held[:1])
    assert len(lines(tmp_path / "journal")) == 2  # the second still waits for its commit
    journal.settle(held[2:])
    assert lines(tmp_path / "journal") == []
    journal.close()


def test_a_batch_the_disk_refuses_is_counted_record_by_record(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "journal")
    journal.open()

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    assert journal.append_many([line(entry()), line(entry()), None]) == [None, None, None]
    assert journal.failed == 3 and journal.error == "No space left on device"


async def test_records_sealed_together_are_drafted_once_each_and_journaled_with_one_write(tmp_path, monkeypatch):
    counting = CountingBuilder()
    journal_dir = tmp_path / "journal"
    sink = Sink(counting, FakeStore(), Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)),
                RequestStats(), queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    already = record()
    sink.seal(already)
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    batch = [record(), already, record()]
    sink.seal_many(batch)
    assert len(writes) == 1 and counting.built == 3  # the one sealed before is not drafted again
    assert batch[0].journaled is batch[2].journaled is not None
    drafted = [draft["row"]["id"] for draft in lines(journal_dir)]
    assert drafted == [r.draft["row"]["id"] for r in (already, batch[0], batch[2])]
    for rec in batch:
        sink.submit(rec)
    await sink.close()
    assert list(journal_dir.iterdir()) == []


async def test_a_journaled_draft_that_lacks_a_column_is_refused_alone(engine, tmp_path):
    # Drafts are finished into rows when replayed: a draft whose row lacks a column the store requires used
    # to make a row the writer could not bind (KeyError, taken for an outage: nothing replayed, ever).
    from sluicegate.telemetry.service import store_writer

    from .test_sink import stored

    journal_dir = tmp_path / "journal"
    made = builder()
    good, no_created, no_price, no_user = (made.draft_line(record())[0] for _ in range(4))
    del no_created["row"]["created_ms"]  # NOT NULL in the store: refused
    del no_price["price"]  # not a draft finish can make rows of: refused
    del no_user["row"]["user"]  # a column the store allows NULL in (a draft older than it): NULL
    _die_with_a_journal(journal_dir, [good, no_created, no_price, no_user])
    writer = store_writer(engine)
    sink = Sink(builder(), writer, Spool(tmp_path / "spool", 10_000_000, adopts=(journal_dir,)), RequestStats(),
                queue_max=100, batch_max=10, journal=Journal(journal_dir))
    await sink.start()
    sink.submit(record())
    await settle(sink, lambda: sink.written == 1 and sink.replayed == 2)
    await sink.close()
    assert await stored(engine) == 3 and sink.store_up
    assert sink.gauges().dropped == {"spool_corrupt": 2}
    assert list(journal_dir.iterdir()) == [] and list((tmp_path / "spool").iterdir()) == []


def test_a_settled_segment_that_cannot_be_deleted_is_closed_and_left(tmp_path, monkeypatch):
    # A read-only directory: the segment's records are stored (a replay at the next start skips their ids),
    # so its delete failing is no error of the request log's, and its descriptor must not leak.
    journal = Journal(tmp_path / "journal", rotate_bytes=1)
    journal.open()
    held = [journal.append(line(entry())) for _ in range(2)]  # the first is rotated: deleted once settled
    fds = [segment.segment.fd for segment in held]

    def read_only(self, missing_ok=False):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(type(tmp_path), "unlink", read_only)
    journal.settle(held)
    journal.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    monkeypatch.undo()
    assert len(list((tmp_path / "journal").iterdir())) == 2
