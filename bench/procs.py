"""Start, watch and always stop the processes a benchmark run owns.

Every child gets its own session (process group), so stopping it also stops whatever it forked
(nginx workers, uvicorn children, npm shims). The Supervisor is a context manager: leaving it, by
success, exception or Ctrl-C, stops every group it started, newest first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: if the harness itself is killed (even by SIGKILL, where no
    cleanup can run), the kernel SIGKILLs this child too, so no server outlives its run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def free_port() -> int:
    """A port the kernel just handed out on loopback; closed again so the child can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    log_path: Path
    started_at: float  # time.perf_counter() just before spawn, for startup-to-first-200

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")
        full_env = dict(os.environ) if env is None else dict(env)  # a given env is the whole env
        started = time.perf_counter()
        try:
            popen = subprocess.Popen(
                list(argv), env=full_env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
            )
        finally:
            log.close()  # the child holds its own descriptor
        child = Child(name, popen, log_path, started)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        _stop_group(child.popen)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type | None, *_rest: object) -> None:
        if exc_type is not None and self.children:
            print(f"bench: stopping {len(self.children)} process group(s) after {exc_type.__name__}",
                  file=sys.stderr, flush=True)
        self.stop_all()


def _stop_group(popen: subprocess.Popen) -> None:
    """SIGTERM the whole group, wait a little, then SIGKILL whatever is left."""
    pgid = popen.pid  # start_new_session makes the child its group's leader
    _signal_group(pgid, signal.SIGTERM)
    try:
        popen.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(pgid, signal.SIGKILL)  # also reaps forked workers that outlived the leader
    try:
        popen.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def install_termination_handlers() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so `with Supervisor()` unwinds and stops the children.

    Ctrl-C raises KeyboardInterrupt, which unwinds the same way; its handler is set explicitly
    because a shell starting us in the background hands us SIGINT ignored.
    """
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


def group_pids(leader: int) -> list[int]:
    """Every live process in the session led by ``leader`` (the leader included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == leader:  # field 6 of stat: session id
            pids.append(int(entry.name))
    return pids


def cpu_seconds(leader: int) -> float:
    """CPU time (user + system, every thread) used so far by the live processes of ``leader``'s session."""
    ticks = 0
    for pid in group_pids(leader):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat: utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(leader: int) -> int:
    """Resident set size summed over the whole process group (an upper bound for multi-process)."""
    total = 0
    for pid in group_pids(leader):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total
