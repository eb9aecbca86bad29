"""Run a command inside a throw-away network namespace that has only ``lo`` up.

For end-to-end SSRF tests: a gateway started in such a namespace cannot reach anything but loopback,
so even a broken guard cannot send a packet off the machine (there is no interface and no route).
Needs Linux, root and iproute2's ``ip netns``; ``unavailable_reason()`` says why not, for a skip.

    from tests.netns import isolated_netns, run_in_netns, unavailable_reason
    if (why := unavailable_reason()): pytest.skip(why)
    with isolated_netns(addresses=["10.0.0.5", "fd00:ec2::254"], etc={"hosts": "10.0.0.5 a.example\n"}) as ns:
        run_in_netns(ns, [sys.executable, "-m", "sluicegate", "serve", ...])

``addresses`` are added to ``lo`` inside the namespace, so a connection to them stays on that loopback
device and reaches whatever listens there. ``etc`` files are written to ``/etc/netns/<name>/``, which
``ip netns exec`` bind-mounts over ``/etc/<file>``: a ``hosts`` file maps names for every resolver that
goes through getaddrinfo (aiohttp's ThreadedResolver included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ETC_NETNS = Path("/etc/netns")


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
def isolated_netns(
    prefix: str = "sluicegate", *, addresses: Sequence[str] = (), etc: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Create a namespace with only loopback up (plus ``addresses`` on it, and ``etc`` files for it);
    delete it, and so every address in it, and its files afterwards, also when the body fails."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _write_etc(name, etc or {})  # before the first exec: each exec bind-mounts what is there then
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        for address in addresses:
            add_address(name, address)
        yield name
    finally:
        _ip("netns", "del", name, check=False)
        _remove_etc(name)


def add_address(name: str, address: str) -> None:
    """Put one host address on the namespace's ``lo`` (nodad: an IPv6 address is usable at once)."""
    if ":" in address:
        _ip("netns", "exec", name, "ip", "-6", "addr", "add", f"{address}/128", "dev", "lo", "nodad")
    else:
        _ip("netns", "exec", name, "ip", "addr", "add", f"{address}/32", "dev", "lo")


def _write_etc(name: str, files: Mapping[str, str]) -> None:
    if not files:
        return
    folder = ETC_NETNS / name
    for _ in range(3):  # another test's _remove_etc may remove an empty /etc/netns in between
        try:
            folder.mkdir(parents=True, exist_ok=True)
            break
        except FileNotFoundError:
            time.sleep(0.01)
    for file_name, text in files.items():
        if "/" in file_name or not (Path("/etc") / file_name).exists():
            raise ValueError(f"/etc/{file_name} must exist for ip netns exec to bind-mount over it")
        (folder / file_name).write_text(text)


def _remove_etc(name: str) -> None:
    shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
    with contextlib.suppress(OSError):
        ETC_NETNS.rmdir()  # only when empty: other namespaces' files stay


def netns_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``name`` (for Popen of a long-lived server)."""
    return ["ip", "netns", "exec", name, *argv]


def run_in_netns(name: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 60)
    return subprocess.run(netns_argv(name, argv), **kwargs)
