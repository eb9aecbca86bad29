"""Test side of the end-to-end SSRF scenarios: make the namespace, run ``scenario.py`` in it, read the report.

The namespace has only ``lo``, with the scenario's private and metadata addresses added to it, its own
``/etc/hosts`` (names mapped to those addresses) and a ``resolv.conf`` that points at 127.0.0.1, where
no DNS server listens: a name the hosts file does not know fails at once, and even a DNS query would
stay on loopback. So a broken guard can only ever hit a trap listener, never a real host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
import pytest

import sluicegate
from tests import netns

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_TIMEOUT_S = 100.0  # the scenario stops itself well before (deadline_s); this is the backstop
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def skip_reason() -> str | None:
    reason = netns.unavailable_reason()
    return f"end-to-end SSRF tests run the gateway in a network namespace: {reason}" if reason else None


def hosts_file(names: Mapping[str, Iterable[str]]) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{address} {name}" for name, addresses in names.items() for address in addresses]
    return "\n".join(lines) + "\n"


def _env() -> dict[str, str]:
    """Our source tree first, for the scenario and the gateway it starts (they inherit it)."""
    paths = [str(Path(sluicegate.__file__).resolve().parents[1]), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _run(argv: list[str]) -> tuple[int, str, str]:
    # A session of its own: on timeout the whole group (scenario and gateway) is killed, not just ip.
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"scenario timed out after {SCENARIO_TIMEOUT_S}s:\n{err[-6000:]}") from None
    finally:
        _kill_group(proc)
    return proc.returncode, out, err


def _kill_group(proc: subprocess.Popen) -> None:
    """Whatever of the scenario's process group is still alive (a gateway it failed to stop) goes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader only while members remain
    if proc.poll() is None:
        proc.wait(10)


def run_scenario(plan: dict, workdir: Path, *, addresses: Iterable[str],
                 names: Mapping[str, Iterable[str]]) -> dict:
    """Run ``plan`` in a fresh namespace; the report, or an AssertionError carrying the gateway's log."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    plan_path = workdir / "plan.json"
    plan_path.write_bytes(orjson.dumps({"deadline_s": 80, **plan, "workdir": str(workdir)}))
    etc = {"hosts": hosts_file(names), "resolv.conf": RESOLV_CONF}
    with netns.isolated_netns("sg-ssrf", addresses=list(addresses), etc=etc) as name:
        argv = netns.netns_argv(name, [sys.executable, "-m", "tests.ssrf.scenario", str(plan_path)])
        code, out, err = _run(argv)
    if code != 0 or not out.strip():
        raise AssertionError(f"scenario exited with {code}:\n{err[-6000:]}")
    report = orjson.loads(out.strip().splitlines()[-1])
    report["log"] = err
    return report
