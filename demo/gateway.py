"""The demo's gateway: ``sluicegate serve`` as a child process on loopback (standard library only).

Every commercial provider's default base URL points at a dead loopback port, as in the test suite, so
nothing the demo does leaves the machine: only the model servers it started answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEAD = "http://127.0.0.1:9/blackhole"  # nothing listens on the discard port


def loopback_only_env() -> dict[str, str]:
    from sluicegate.providers.registry import PROVIDERS  # the demo runs with the gateway's own python

    return {f"SLUICEGATE_PROVIDER_URL_{pid.upper().replace('-', '_')}": DEAD for pid in PROVIDERS}


class DemoGateway:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "gateway.log"
        self.env = {**os.environ, **loopback_only_env(), "SLUICEGATE_DATA_DIR": str(data_dir)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> DemoGateway:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sluicegate", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.proc.returncode}, see {self.log_path}")
            if self._announced() and self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the gateway did not become healthy in {timeout:g} s, see {self.log_path}")

    def _announced(self) -> bool:
        """Its banner says it listens on this port. The port was free when chosen, not reserved: another
        process may have taken it since, and answer the health check while our child fails to bind."""
        return f"listening on {self.url} " in self.log_path.read_text(errors="replace")

    def _healthy(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(f"{self.url}/v1/health", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
