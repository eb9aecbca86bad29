"""Records of answers ready in the same turn of the event loop are sealed together before any answer goes out.

``Telemetry.submit_answered`` is what a route awaits before returning its answer (server/routes.py): with
the journal, the records of every answer that became ready in one turn are drafted in a row and journaled
with one write at the start of the next, and only then do their handlers go on.
"""

from __future__ import annotations

import asyncio
import os

from sluicegate.settings import Settings
from sluicegate.telemetry.service import Telemetry
from sluicegate.types import public_metadata

from .helpers import record
from .test_journal import lines
from .test_sink import FakeStore, settle


def telemetry(tmp_path, **settings) -> tuple[Telemetry, FakeStore]:
    store = FakeStore()
    made = Telemetry(Settings(data_dir=tmp_path, **settings), None, metadata_of=public_metadata,  # type: ignore[arg-type]
                     writer=store)
    return made, store


async def test_answers_ready_together_wait_for_one_write_that_holds_all_their_records(tmp_path, monkeypatch):
    tel, store = telemetry(tmp_path)
    await tel.start()
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    records = [record() for _ in range(5)]
    on_disk_when_resumed = []

    async def handler(rec):
        await tel.submit_answered(rec)
        journaled = {draft["row"]["id"] for draft in lines(tmp_path / "journal")}
        on_disk_when_resumed.append(rec.draft["row"]["id"] in journaled)

    await asyncio.gather(*(handler(rec) for rec in records))
    assert len(writes) == 1 and on_disk_when_resumed == [True] * 5
    await settle(tel.sink, lambda: len(store.rows) == 5)
    later = record()
    await tel.submit_answered(later)  # a turn of its own: a write of its own
    assert len(writes) == 2
    await tel.close()
    assert len(store.rows) == 6 and tel.sink.gauges().dropped == {}


async def test_a_handler_cancelled_while_it_waits_leaves_its_record_to_the_batch_and_the_others_unharmed(tmp_path):
    tel, store = telemetry(tmp_path)
    await tel.start()
    records = [record() for _ in range(3)]
    tasks = [asyncio.create_task(tel.submit_answered(rec)) for rec in records]
    await asyncio.sleep(0)  # each is waiting for the batch now
    tasks[1].cancel()  # its client left
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] is None and results[2] is None and isinstance(results[1], asyncio.CancelledError)
    await settle(tel.sink, lambda: len(store.rows) == 3)  # all three stored, each once
    await tel.close()
    assert sorted(store.rows) == sorted(rec.draft["row"]["id"] for rec in records)


async def test_without_the_journal_an_answer_waits_for_nothing(tmp_path):
    tel, store = telemetry(tmp_path, log_journal=False)
    await tel.start()
    rec = record()
    waiting = tel.submit_answered(rec)
    await waiting
    assert rec.sealed is False and not (tmp_path / "journal").exists()  # drafted by the drain task instead
    await settle(tel.sink, lambda: len(store.rows) == 1)
    await tel.close()
