"""What the command line sets for the whole process before any library loads (sluicegate/cli/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import sluicegate.cli, os, sys; print(os.environ['MIMALLOC_ARENA_EAGER_COMMIT'], 'pyreqwest' in sys.modules)"


@pytest.mark.parametrize(("given", "expected"), [(None, "0"), ("1", "1")])
def test_mimalloc_commits_lazily_unless_the_operator_says_otherwise(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_ARENA_EAGER_COMMIT"}
    if given is not None:
        env["MIMALLOC_ARENA_EAGER_COMMIT"] = given
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    # The setting is in place once the command line is imported, and pyreqwest (so mimalloc) is not loaded yet:
    # only SLUICEGATE_UPSTREAM_CLIENT=reqwest loads it, when the app is built. That order is the point.
    assert done.stdout.split() == [expected, "False"]
