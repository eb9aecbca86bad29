"""Run ``sluicegate serve`` as a real process on a free loopback port, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Nothing listens on the discard port: a provider default that a test forgot to point at a fake fails
# here, on loopback, instead of reaching a real provider.
BLACKHOLE = "http://127.0.0.1:9/blackhole"


def loopback_only_env() -> dict[str, str]:
    """Point every provider's default base URL at loopback, so no test can reach a commercial API."""
    from sluicegate.providers.registry import PROVIDERS

    return {f"SLUICEGATE_PROVIDER_URL_{pid.upper().replace('-', '_')}": BLACKHOLE for pid in PROVIDERS}


class PortTaken(RuntimeError):
    pass


class GatewayProcess:
    """``env`` values of None remove that variable; ``listen`` is the ``--host`` the gateway binds
    (a wildcard is reached on the loopback address of its family, which it includes); ``port`` defaults
    to a free one."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str | None] | None = None,
        args: tuple[str, ...] = (),
        listen: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.listen = listen
        self.port = port or free_port()
        # A port chosen here was free when chosen, not reserved: until the first start succeeds, another one is
        # chosen when something took it meanwhile (another test's server, an outgoing connection's local port).
        self._may_move = port is None
        self.data_dir = data_dir
        merged = {**os.environ, **loopback_only_env(), "SLUICEGATE_DATA_DIR": str(data_dir), **(env or {})}
        self.env = {key: value for key, value in merged.items() if value is not None}
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir / "gateway.log"

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.listen.strip("[]"), self.listen.strip("[]"))
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        for _ in range(3 if self._may_move else 0):
            try:
                return self._start(timeout)
            except PortTaken:
                self.port = free_port()
        return self._start(timeout)

    def _start(self, timeout: float) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        earlier = log.tell()  # a restart appends: only what this run prints tells that it listens
        cmd = [sys.executable, "-m", "sluicegate", "serve", "--host", self.listen, "--port", str(self.port),
               *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                printed = self.log_path.read_bytes()[earlier:]
                if self._may_move and b"address already in use" in printed:
                    raise PortTaken(self.port)
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            try:
                # No proxy from the environment: the gateway is local (and may sit in a namespace).
                healthy = httpx.get(f"{self.url}/v1/health", timeout=0.5, trust_env=False).status_code == 200
            except httpx.HTTPError:
                healthy = False
            # The port was free when chosen, not reserved: another test's gateway may have taken it since and
            # be the one answering. This process's banner (printed once it listens) says the port is its own.
            if healthy and self._announced(earlier):
                self._may_move = False  # a restart comes back where its clients expect it
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def _announced(self, since: int) -> bool:
        with open(self.log_path, "rb") as handle:
            handle.seek(since)
            return f":{self.port} (workers: ".encode() in handle.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
