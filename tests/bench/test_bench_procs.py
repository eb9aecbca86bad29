"""bench/procs.py reads a process group's CPU time from /proc: the figure the bench divides by requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench import procs

# Burns half a second of CPU. The checks below ask for 0.4 s: /proc counts CPU in clock ticks, rounded down,
# so a process that burned exactly the bound could read a tick short of it forever.
BURN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"


def _group(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _stop(leader: subprocess.Popen) -> None:
    try:
        os.killpg(leader.pid, signal.SIGKILL)  # the leader and whatever it started in its session
    except ProcessLookupError:
        pass
    leader.wait(10)


def test_cpu_seconds_counts_what_a_group_burned_and_not_what_it_slept():
    busy = _group(BURN + "time.sleep(30)")  # burns 0.5 s of CPU, then stays alive for the reading
    idle = _group("import time\ntime.sleep(30)")
    try:
        deadline = time.monotonic() + 20
        while procs.cpu_seconds(busy.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 0.4 <= procs.cpu_seconds(busy.pid) < 1.5
        assert procs.cpu_seconds(idle.pid) < 0.3  # its interpreter's start-up only
    finally:
        _stop(busy)
        _stop(idle)


def test_cpu_seconds_adds_up_every_process_of_the_group():
    # a leader that burns, starting a child in its session that burns as much; both stay alive to be read
    child = BURN + "time.sleep(30)"
    leader = _group(f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {child!r}])\n" + child)
    try:
        deadline = time.monotonic() + 20
        while procs.cpu_seconds(leader.pid) < 0.8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procs.cpu_seconds(leader.pid) >= 0.8  # neither one alone burned more than ~0.5 s
    finally:
        _stop(leader)


def test_a_group_that_is_gone_has_used_nothing_that_can_be_read():
    gone = _group("pass")
    gone.wait(10)
    assert procs.cpu_seconds(gone.pid) == 0.0
