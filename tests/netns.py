"""Run a command inside a throw-away network namespace that has only ``lo`` up.

For end-to-end SSRF tests: a gateway started in such a namespace cannot reach anything but loopback,
so even a broken guard cannot send a packet off the machine (there is no interface and no route).
Needs Linux, root and iproute2's ``ip netns``; ``unavailable_reason()`` says why not, for a skip.

    from tests.netns import isolated_netns, run_in_netns, unavailable_reason
    if (why := unavailable_reason()): pytest.skip(why)
    with isolated_netns() as ns:
        run_in_netns(ns, [sys.executable, "-m", "sluicegate", "serve", ...])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from typing import Iterator, Sequence


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable_reason() -> str | None:
    """None when namespaces can be made here; otherwise a human reason for ``pytest.skip``."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    probe = f"sg-probe-{uuid.uuid4().hex[:8]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


@contextlib.contextmanager
def isolated_netns(prefix: str = "sluicegate") -> Iterator[str]:
    """Create a namespace with only loopback up; delete it (and so every interface in it) afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        _ip("netns", "del", name, check=False)


def netns_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``name`` (for Popen of a long-lived server)."""
    return ["ip", "netns", "exec", name, *argv]


def run_in_netns(name: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 60)
    return subprocess.run(netns_argv(name, argv), **kwargs)
