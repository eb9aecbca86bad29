"""`sluicegate serve --workers N` says it listens only once every worker is bound; when a worker cannot start,
the operator reads why and gets a non-zero exit, never the listening line. Real processes, loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from tests.e2e.test_serve import _listening_pids
from tests.gateway import free_port, loopback_only_env

LISTENING = "sluicegate listening on"


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, **loopback_only_env(), "SLUICEGATE_DATA_DIR": str(data)}
    env.pop("SLUICEGATE_REDIS_URL", None)
    return env


def test_the_banner_comes_once_every_worker_is_bound(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sluicegate", "serve", "--workers", "2", "--host", "127.0.0.1",
                             "--port", str(port)], env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        for line in proc.stdout:  # blocks until the supervisor prints: no polling of the port here
            if line.startswith(LISTENING):
                break
        else:
            raise AssertionError(f"no banner; exit {proc.wait(10)}")
        # Asked the moment the banner is read, not retried: both workers must be accepting already.
        answered = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=5, trust_env=False)
        assert answered.status_code == 200
        assert len(_listening_pids(port)) == 2 and proc.pid not in _listening_pids(port)
        assert time.monotonic() - started < 30  # generous for a loaded machine; the bench holds the real bound
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_workers_that_cannot_bind_never_say_they_listen(tmp_path: Path) -> None:
    with socket.socket() as taken:  # held without SO_REUSEPORT: every worker's bind fails
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "sluicegate", "serve", "--workers", "2", "--host", "127.0.0.1",
                               "--port", str(port)], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert LISTENING not in done.stdout
    assert done.returncode == 2
    assert "sluicegate: cannot start:" in done.stderr and "address already in use" in done.stderr.lower()
    # The supervisor finds it before it prepares the store or starts a worker (the race it cannot see, a worker
    # whose bind fails after that check, is the fake workers' test below).
    assert done.stderr.count("cannot start") == 1 and "worker" not in done.stderr, done.stderr


# A stand-in for a worker: the first one started reports that it is bound and waits; the second fails at start.
FAKE_WORKER = textwrap.dedent("""
    import os, sys, time
    try:
        os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(0.3)
        sys.exit("sluicegate: cannot start: the second worker fails (test)")
    fd = os.environ.get("SLUICEGATE_WORKER_READY_FD")
    if fd:
        os.write(int(fd), b"1")
    with open(sys.argv[1] + ".pid", "w") as out:
        out.write(str(os.getpid()))
    time.sleep(120)
""")

SUPERVISOR = textwrap.dedent("""
    import sys
    from sluicegate import serve
    from sluicegate.settings import Settings

    serve.worker_argv = lambda settings: [sys.executable, "-c", sys.argv[1], sys.argv[2]]
    sys.exit(serve.supervise(Settings(workers=2, host="127.0.0.1", port=int(sys.argv[3]))))
""")


def test_one_worker_failing_at_start_stops_the_others_and_the_supervisor_exits_2(tmp_path: Path) -> None:
    marker = tmp_path / "first-worker"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SUPERVISOR, FAKE_WORKER, str(marker), str(free_port())],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert LISTENING not in done.stdout
    assert done.returncode == 2, done.stderr
    assert "the second worker fails (test)" in done.stderr
    assert time.monotonic() - started < 30
    survivor = int((tmp_path / "first-worker.pid").read_text())
    try:
        os.kill(survivor, 0)
    except ProcessLookupError:
        pass  # stopped and reaped by the supervisor
    else:
        os.kill(survivor, 9)
        raise AssertionError("the worker that had started was left running")
