"""bench/launch.py waits for the cluster's ready file, which demo.cluster writes a moment after nginx answers."""

from __future__ import annotations

import sys

import pytest

from bench import launch
from bench.procs import Supervisor
from bench.ready import NotReady

# Writes its ready file as demo.cluster does (whole, by rename), after a pause, then stays up.
LATE_WRITER = """
import pathlib, sys, time
time.sleep(0.5)
ready = pathlib.Path(sys.argv[1])
partial = ready.with_name(ready.name + ".partial")
partial.write_text('{"nginx_pid": 1}')
partial.replace(ready)
time.sleep(30)
"""


def test_a_ready_file_written_after_the_first_answer_is_waited_for(tmp_path):
    ready = tmp_path / "ready.json"
    with Supervisor(tmp_path / "logs") as sup:
        child = sup.start("late", [sys.executable, "-c", LATE_WRITER, str(ready)])
        assert not ready.exists()
        assert launch._written(ready, child, 10) == '{"nginx_pid": 1}'
        sup.stop_all()


def test_a_process_that_ends_without_writing_it_is_not_waited_for(tmp_path):
    with Supervisor(tmp_path / "logs") as sup:
        child = sup.start("quitter", [sys.executable, "-c", "print('no database')"])
        with pytest.raises(NotReady, match="ready.json not written"):
            launch._written(tmp_path / "ready.json", child, 10)
