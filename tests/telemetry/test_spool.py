"""The local spool: bounded, replayable oldest first, locked while written, safe after a crash."""

from __future__ import annotations

import fcntl
import os

import orjson

from sluicegate.telemetry.spool import Spool

from .helpers import entry


def test_append_take_replay(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    assert not spool.pending
    entries = [entry() for _ in range(3)]
    assert spool.append(entries).kept == 3
    assert spool.pending and spool.bytes > 0
    segment = spool.take()
    assert segment is not None
    read, torn = segment.read()
    assert torn == 0 and [r["id"] for r, _ in read] == [r["id"] for r, _ in entries]
    assert read[0][1] == entries[0][1]  # attempts travel with their request
    spool.replayed(segment)
    assert spool.take() is None and not spool.pending and spool.bytes == 0
    assert list((tmp_path / "spool").iterdir()) == []


def test_bound_keeps_what_fits(tmp_path):
    one = entry()
    spool = Spool(tmp_path, max_bytes=1)
    spool.open()
    assert spool.append([one]).kept == 0  # nothing fits: the caller counts the drop
    three = [entry(), entry(), entry()]
    sizes = [len(orjson.dumps([row, attempts])) + 1 for row, attempts in three]
    spool = Spool(tmp_path, max_bytes=sizes[0] + sizes[1])
    spool.open()
    assert spool.append(three).kept == 2 and spool.bytes == sizes[0] + sizes[1]


def test_files_are_private(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    spool.append([entry()])
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    (path,) = (tmp_path / "spool").iterdir()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_segment_another_process_writes_is_left_alone(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000_000)
    spool.open()
    busy = tmp_path / "00000000000000000001-999.jsonl"
    busy.write_bytes(b"")
    fd = os.open(busy, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # flock locks belong to the open file: this holds against our own process
    try:
        assert spool.take() is None
    finally:
        os.close(fd)
    segment = spool.take()
    assert segment is not None and segment.path == busy


def test_a_segment_held_elsewhere_is_looked_at_again_when_due(tmp_path):
    now = [100.0]
    spool = Spool(tmp_path, max_bytes=10_000_000, clock=lambda: now[0], relook_s=5.0)
    spool.open()
    assert spool.relook_in() is None
    busy = tmp_path / "00000000000000000001-999.jsonl"
    busy.write_bytes(orjson.dumps([*entry()]) + b"\n")
    fd = os.open(busy, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a process still exiting as this one starts
    try:
        assert spool.take() is None
        assert not spool.pending and spool.relook_in() == 5.0
        now[0] += 4.9
        assert not spool.pending
    finally:
        os.close(fd)
    now[0] += 0.1
    assert spool.pending and spool.relook_in() == 0.0
    segment = spool.take()
    assert segment is not None and segment.path == busy
    spool.replayed(segment)
    assert spool.take() is None and not spool.pending and spool.relook_in() is None  # nothing held: no look


def test_leftovers_of_a_crashed_run_are_replayed_and_torn_lines_counted(tmp_path):
    first = Spool(tmp_path, max_bytes=10_000_000)
    first.open()
    kept = entry()
    first.append([kept])
    first.close()
    (path,) = tmp_path.iterdir()
    with open(path, "ab") as handle:
        handle.write(b'[{"id": "torn')  # the process died mid-line
    second = Spool(tmp_path, max_bytes=10_000_000)
    second.open()
    assert second.pending and second.bytes == path.stat().st_size
    segment = second.take()
    read, torn = segment.read()
    assert [r["id"] for r, _ in read] == [kept[0]["id"]] and torn == 1


def test_an_unencodable_entry_is_counted_and_the_bytes_match_the_disk(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    bad = entry()
    bad[0]["trace_id"] = "poison-\udcff"
    appended = spool.append([entry(), bad, entry()])
    assert (appended.kept, appended.full, appended.invalid) == (2, 0, 1)
    assert spool.bytes == sum(p.stat().st_size for p in (tmp_path / "spool").iterdir())


def test_a_failed_write_leaves_no_torn_line_and_no_phantom_bytes(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    spool.append([entry()])
    before = spool.bytes
    real_write = os.write

    def short_write(fd, data):  # what a full disk does: part of the data, then nothing
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", short_write)
    try:
        spool.append([entry(), entry()])
    except OSError:
        pass
    else:
        raise AssertionError("a short write must raise")
    monkeypatch.setattr(os, "write", real_write)
    assert spool.bytes == before == sum(p.stat().st_size for p in (tmp_path / "spool").iterdir())
    segment = spool.take()
    assert segment.read()[1] == 0  # no torn line


def _segment_of(directory, values, name="00000000000000000001-1.jsonl"):
    """A segment a dead process left: these values as its lines (bytes as they are)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"".join((v if isinstance(v, bytes) else orjson.dumps(v)) + b"\n" for v in values))
    return path


def test_a_line_the_writer_cannot_store_is_refused_alone(tmp_path):
    # Valid JSON of the right outer shape that lacks a column: taken for an entry, it made the writer raise
    # KeyError, read as a store outage, and nothing of the segment (nor any live record) was stored again.
    good, no_user, no_routing = entry(), entry(), entry()
    del no_user[0]["user"]  # a nullable column (a line older than the column): NULL, as in the rows stored then
    del no_routing[1][0]["routing"]
    no_created, no_latency = entry(), entry()
    del no_created[0]["created_ms"]  # NOT NULL: no row without it
    del no_latency[1][0]["latency_ms"]
    path = _segment_of(tmp_path / "spool", [
        [*good], [{}, []], [*no_user], [1, 2], "ab", [*no_created], {"row": {}}, [*no_routing], [*no_latency],
        [good[0], "x"], [good[0], [5]], b'[{"id": "torn'])
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    segment = spool.take()
    assert segment is not None and segment.path == path
    read, bad = segment.read()
    assert [row["id"] for row, _ in read] == [good[0]["id"], no_user[0]["id"], no_routing[0]["id"]]
    assert read[0] == good and read[1][0]["user"] is None and read[2][1][0]["routing"] is None
    assert all(type(name) is str for row, _ in read for name in row)  # JSON again when spooled again
    orjson.dumps(read)
    assert bad == 9 and segment.refused == "line 2: the row lacks attempt_count, created_ms, endpoint …"
    spool.replayed(segment)


def test_a_file_that_cannot_be_opened_is_skipped_said_once_and_looked_at_again(tmp_path, caplog):
    now = [100.0]
    directory = tmp_path / "spool"
    blocked = directory / "00000000000000000001-1.jsonl"
    blocked.mkdir(parents=True)  # what the gateway cannot open read-write (as a file it may not write)
    kept = entry()
    _segment_of(directory, [[*kept]], name="00000000000000000002-1.jsonl")
    spool = Spool(directory, max_bytes=10_000_000, clock=lambda: now[0], relook_s=5.0)
    spool.open()
    assert spool.bytes == (directory / "00000000000000000002-1.jsonl").stat().st_size  # a directory holds none
    segment = spool.take()  # the next one: the unopenable one costs nothing else
    assert segment is not None and [row["id"] for row, _ in segment.read()[0]] == [kept[0]["id"]]
    spool.replayed(segment)
    assert spool.take() is None and spool.relook_in() == 5.0  # looked at again, as a segment held elsewhere
    now[0] += 5.0
    assert spool.pending and spool.take() is None
    said = [r for r in caplog.records if str(blocked) in r.getMessage()]
    assert len(said) == 1 and "Is a directory" in said[0].getMessage() and not said[0].exc_info
    blocked.rmdir()
    _segment_of(directory, [[*kept]], name=blocked.name)  # put right: replayed at the next look
    now[0] += 5.0
    segment = spool.take()
    assert segment is not None and segment.path == blocked


def test_an_adopted_journal_segment_never_replaces_a_spool_segment(tmp_path):
    spooled, journaled = entry(), entry()
    name = "00000000000000000001-1.jsonl"
    _segment_of(tmp_path / "spool", [[*spooled]], name=name)
    _segment_of(tmp_path / "journal", [[*journaled]], name=name)  # a dead process's, by the same name
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, adopts=(tmp_path / "journal",))
    spool.open()
    assert list((tmp_path / "journal").iterdir()) == []
    ids = []
    while (segment := spool.take()) is not None:
        ids += [row["id"] for row, _ in segment.read()[0]]
        spool.replayed(segment)
    assert sorted(ids) == sorted([spooled[0]["id"], journaled[0]["id"]])


def test_a_journal_segment_already_linked_into_the_spool_is_not_adopted_twice(tmp_path):
    # A process that died between the two names' link and unlink: one segment, under two names.
    journaled = entry()
    path = _segment_of(tmp_path / "journal", [[*journaled]])
    (tmp_path / "spool").mkdir()
    os.link(path, tmp_path / "spool" / path.name)
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, adopts=(tmp_path / "journal",))
    spool.open()
    assert list((tmp_path / "journal").iterdir()) == [] and len(list((tmp_path / "spool").iterdir())) == 1


def test_a_segment_that_cannot_be_deleted_is_closed_all_the_same(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    spool.open()
    spool.append([entry()])
    segment = spool.take()
    fd = segment.fd

    def read_only(self, missing_ok=False):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(type(segment.path), "unlink", read_only)
    spool.replayed(segment)  # said, not raised: its records are stored
    try:
        os.fstat(fd)
    except OSError:
        pass
    else:
        raise AssertionError("the segment's descriptor leaked")
    segment.release(delete=True)  # released once: a second release closes nothing (the fd may be reused)
    assert spool.take() is None  # stored: not replayed again by this process
    monkeypatch.undo()
    assert len(list((tmp_path / "spool").iterdir())) == 1
