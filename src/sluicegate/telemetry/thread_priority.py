"""The log writer thread's CPU priority: the scheduler's idle class (Linux ``SCHED_IDLE``), raised back to
normal for a write that waits too long.

Why: the request log's commits run on a thread of their own, mostly in SQLite with the GIL released, and on
a machine with few cores a commit (1-6 ms of that thread's CPU) delayed the event loop's wake-ups that came
meanwhile by about its length. Measured in one process on 2 vCPUs, a loop waking every 2 ms was late by
2.5-2.9 ms at p99 while a thread committed log batches (or merely hashed bytes with the GIL released), and
by 0.24-0.38 ms with that thread in the idle class, which gives the CPU to any other runnable task at once
(docs/benchmarks.md, "One stream's time to first token: the writer's priority").

The risk of the idle class is starvation: on a CPU saturated by other work the thread may hardly run, the
log falls behind and paces requests. So a write that has not finished within ``RAISE_AFTER_S`` gets the
normal class back for the rest of it (set from the event loop: a starved thread cannot do it itself), and
the next write starts in the idle class again. Leaving the idle class needs privilege (``CAP_SYS_NICE``, or
an ``RLIMIT_NICE`` that allows nice 0), so the thread enters it only where a throwaway thread showed it can
come back; elsewhere, and off Linux, it keeps the normal class and nothing changes.
"""

from __future__ import annotations

import os
import threading

RAISE_AFTER_S = 0.1  # a quiet gateway's commit takes some ms, a 1,000-row batch some tens of ms


class IdlePriority:
    """The scheduling class of one thread: ``enter`` runs in that thread (an executor's initializer), the
    rest from anywhere."""

    __slots__ = ("_raised", "_tid")

    def __init__(self) -> None:
        self._tid: int | None = None  # set once the thread is in the idle class
        self._raised = False

    @property
    def idle(self) -> bool:
        return self._tid is not None

    def enter(self) -> None:
        """Put the calling thread in the idle class, where it can leave it again."""
        if _reversible():
            tid = threading.get_native_id()
            if _set(tid, os.SCHED_IDLE):
                self._tid = tid

    def raise_(self) -> None:
        """The normal class, for the rest of a write that waited too long."""
        if self._tid is not None and not self._raised:
            self._raised = _set(self._tid, os.SCHED_OTHER)

    def lower(self) -> None:
        """The idle class again, after such a write."""
        if self._tid is not None and self._raised:
            self._raised = not _set(self._tid, os.SCHED_IDLE)


def _set(tid: int, policy: int) -> bool:
    try:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
    except OSError:  # not allowed here (a sandbox, a missing capability)
        return False
    return True


def _reversible() -> bool:
    """Can a thread of this process enter the idle class and leave it again? Tried on a throwaway thread."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    result: list[bool] = []

    def attempt() -> None:
        tid = threading.get_native_id()
        result.append(_set(tid, os.SCHED_IDLE) and _set(tid, os.SCHED_OTHER))

    probe = threading.Thread(target=attempt, name="sluicegate-priority-probe")
    try:
        probe.start()
    except RuntimeError:  # no thread to spare: an executor's initializer that raised would break the writer
        return False
    probe.join()
    return result == [True]
