"""The SQLite log writer's thread runs in the scheduler's idle class, so that its commits do not delay the
event loop's wake-ups on a machine with few cores; a write that waits too long gets the normal class back
for the rest of it (thread_priority.py)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from sluicegate.telemetry import sqlite_writer, thread_priority

from .helpers import entry

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")


def _policy_of_the_writer_thread(writer) -> int:
    return writer._executor.submit(os.sched_getscheduler, 0).result()


async def test_the_writer_thread_commits_in_the_idle_class(sqlite_log_writer):
    if not thread_priority._reversible():
        pytest.skip("this machine does not let a thread leave the idle class")
    await sqlite_log_writer.write([entry()])
    assert _policy_of_the_writer_thread(sqlite_log_writer) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the event loop's thread is not touched


async def test_a_write_that_waits_too_long_gets_the_normal_class_for_the_rest(sqlite_log_writer, monkeypatch):
    if not thread_priority._reversible():
        pytest.skip("this machine does not let a thread leave the idle class")
    monkeypatch.setattr(sqlite_writer, "RAISE_AFTER_S", 0.05)
    await sqlite_log_writer.write([entry()])  # the thread exists, in the idle class
    seen: list[int] = []
    transaction = sqlite_log_writer._transaction

    def slow(rows, attempts):  # a commit starved of CPU, as on a saturated machine
        seen.append(os.sched_getscheduler(0))
        time.sleep(0.3)
        seen.append(os.sched_getscheduler(0))
        transaction(rows, attempts)

    monkeypatch.setattr(sqlite_log_writer, "_transaction", slow)
    await sqlite_log_writer.write([entry()])
    assert seen == [os.SCHED_IDLE, os.SCHED_OTHER]
    assert _policy_of_the_writer_thread(sqlite_log_writer) == os.SCHED_IDLE  # the next write starts idle again


async def test_where_the_idle_class_cannot_be_left_the_thread_keeps_the_normal_one(sqlite_log_writer, monkeypatch):
    real = os.sched_setscheduler

    def no_way_back(tid, policy, param):  # an unprivileged process: RLIMIT_NICE 0, no CAP_SYS_NICE
        if policy != os.SCHED_IDLE:
            raise PermissionError(1, "Operation not permitted")
        real(tid, policy, param)

    monkeypatch.setattr(os, "sched_setscheduler", no_way_back)
    await sqlite_log_writer.write([entry()])
    assert _policy_of_the_writer_thread(sqlite_log_writer) == os.SCHED_OTHER
    assert not sqlite_log_writer.priority.idle
    assert [t.name for t in threading.enumerate() if "priority-probe" in t.name] == []


def test_a_serving_gateway_has_one_thread_in_the_idle_class(tmp_path, upstream):
    """Black-box: after a logged request, exactly one of the gateway's threads (its log writer) is in the
    idle class; the event loop's is not."""
    import httpx

    from tests.fakes.upstream import Reply
    from tests.gateway import GatewayProcess

    if not thread_priority._reversible():
        pytest.skip("this machine does not let a thread leave the idle class")
    gateway = GatewayProcess(tmp_path / "data").start()
    try:
        upstream.push(Reply(json={"id": "c", "object": "chat.completion", "choices": []}))
        answer = httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
        assert answer.status_code == 200, answer.text
        pid = gateway.proc.pid
        deadline = time.monotonic() + 5
        while True:
            policies = {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}
            idle = [tid for tid, policy in policies.items() if policy == os.SCHED_IDLE]
            if idle or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(idle) == 1 and policies[pid] == os.SCHED_OTHER, policies
    finally:
        gateway.stop()
