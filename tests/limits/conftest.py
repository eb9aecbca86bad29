"""Redis for the limits tests: the machine's server on 127.0.0.1:6379 under a unique key prefix per test
(cleaned up after), or a private ``redis-server`` on a free loopback port that a test may stop and restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own: no persistence, loopback only, stoppable."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.extra = extra  # more redis-server arguments (--requirepass …)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # up (asking for a password or not)
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    return f"sgtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def shared_redis(redis_prefix: str) -> Iterator[str]:
    from redis import Redis

    client = Redis.from_url(SHARED_URL, socket_timeout=2)
    try:
        client.ping()
    except Exception:
        client.close()
        pytest.skip("no Redis on 127.0.0.1:6379")
    yield SHARED_URL
    for key in client.scan_iter(match=redis_prefix + "*", count=500):
        client.delete(key)
    client.close()
