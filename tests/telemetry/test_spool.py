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
