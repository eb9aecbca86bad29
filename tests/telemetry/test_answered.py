"""Records of answers ready in the same turn of the event loop are sealed together before any answer goes out.

``Telemetry.answered`` is what a route calls before returning its answer (server/routes.py): with the
journal, the records of every answer that became ready in one turn are drafted in a row and journaled with
one write by ``seal_answered``, which runs first in every flush of the loop turn's write batch (the native
edge's answers, write_batch.py), when aiohttp prepares an answer (app.py), and at the next turn at the latest.
"""

from __future__ import annotations

import asyncio
import os

from sluicegate.settings import Settings
from sluicegate.telemetry.service import Telemetry
from sluicegate.types import public_metadata
from sluicegate.write_batch import WriteBatch

from .helpers import record
from .test_journal import lines
from .test_sink import FakeStore, settle


def telemetry(tmp_path, **settings) -> tuple[Telemetry, FakeStore]:
    store = FakeStore()
    made = Telemetry(Settings(data_dir=tmp_path, **settings), None, metadata_of=public_metadata,  # type: ignore[arg-type]
                     writer=store)
    return made, store


class Answering:
    """A client connection's transport that notes, when an answer is written, whether its record is journaled."""

    def __init__(self, journal_dir, record) -> None:
        self.journal_dir, self.record = journal_dir, record
        self.journaled_when_written: bool | None = None

    def write(self, data: bytes) -> None:
        journaled = {draft["row"]["id"] for draft in lines(self.journal_dir)}
        self.journaled_when_written = self.record.sealed and self.record.draft["row"]["id"] in journaled

    def is_closing(self) -> bool:
        return False


async def test_answers_ready_together_are_journaled_with_one_write_before_any_of_them_is_written(tmp_path, monkeypatch):
    tel, store = telemetry(tmp_path)
    await tel.start()
    writes = WriteBatch()
    writes.before_send = tel.seal_answered
    journal_writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: journal_writes.append(data) or real_write(fd, data))
    loop = asyncio.get_running_loop()
    writes.write(loop, Answering(tmp_path / "journal", record()), b"")  # the turn's flush is queued before them
    records = [record() for _ in range(5)]
    transports = [Answering(tmp_path / "journal", rec) for rec in records]
    for rec, transport in zip(records, transports, strict=True):  # five handlers ending in this turn
        tel.answered(rec)  # returns at once: no turn is spent waiting
        writes.write(loop, transport, b"HTTP/1.1 200 OK\r\n\r\n")
    assert not any(rec.sealed for rec in records)  # nothing sealed, nothing written yet
    await asyncio.sleep(0)  # the flush queued first runs: it seals them all, then writes
    assert [transport.journaled_when_written for transport in transports] == [True] * 5
    assert len(journal_writes) == 1
    await settle(tel.sink, lambda: len(store.rows) == 5)
    await tel.close()
    assert tel.sink.gauges().dropped == {}


async def test_an_answer_written_directly_after_a_flush_finds_its_record_journaled(tmp_path):
    tel, _ = telemetry(tmp_path)
    await tel.start()
    writes = WriteBatch()
    writes.before_send = tel.seal_answered
    rec = record()
    tel.answered(rec)
    transport = Answering(tmp_path / "journal", rec)
    writes.flush()  # what the native edge does before an answer that closes its connection
    transport.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    assert transport.journaled_when_written is True
    await tel.close()


async def test_a_record_whose_answer_never_goes_out_is_sealed_at_the_next_turn_and_stored_once(tmp_path):
    tel, store = telemetry(tmp_path)
    await tel.start()
    records = [record() for _ in range(3)]
    for rec in records:
        tel.answered(rec)  # the handlers were cancelled, or aiohttp never prepared their answers
    await asyncio.sleep(0)
    assert all(rec.sealed for rec in records)
    tel.seal_answered()  # nothing left: a second call changes nothing
    await settle(tel.sink, lambda: len(store.rows) == 3)
    await tel.close()
    assert sorted(store.rows) == sorted(rec.draft["row"]["id"] for rec in records)


async def test_without_the_journal_an_answered_record_is_queued_at_once(tmp_path):
    tel, store = telemetry(tmp_path, log_journal=False)
    await tel.start()
    rec = record()
    tel.answered(rec)
    assert rec.sealed is False and not (tmp_path / "journal").exists()  # drafted by the drain task instead
    await settle(tel.sink, lambda: len(store.rows) == 1)
    await tel.close()
