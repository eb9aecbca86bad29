"""Run llama.cpp's OpenAI-compatible server (llama-cpp-python) on a free loopback port.

One instance costs ~290 MB and one core while it generates (`--n_threads 1`): the machine has two cores,
shared with the gateway and the test client, so a test session runs at most two of them.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

MODEL_ALIAS = "smollm2"
START_ATTEMPTS = 3  # a free port can be taken between our probe and the server's bind: try another


def port_free(port: int) -> bool:
    """Can a server bind ``port`` on loopback now (a preferred port, else take ``free_port()``)?"""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick). Also our "dead upstream" address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """One model server process; `start()` returns once it answers `GET /v1/models`."""

    def __init__(self, python: str | Path, gguf: str | Path, log_path: Path, *, alias: str = MODEL_ALIAS,
                 n_ctx: int = 2048) -> None:
        self.python = str(python)
        self.gguf = str(gguf)
        self.log_path = log_path
        self.alias = alias
        self.n_ctx = n_ctx
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def v1(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            self.python, "-m", "llama_cpp.server", "--model", self.gguf, "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
            # One thread for generation AND for prompt evaluation: the batch default is every core, and
            # its OpenMP threads spin against the other processes on a busy 2-core machine (a first
            # 16-token answer took 9 s instead of 1 s).
            "--n_threads", "1", "--n_threads_batch", "1",
            # Without this a newly arrived request aborts every stream in flight (llama-cpp-python's
            # default): concurrent clients would see their streams cut short.
            "--interrupt_requests", "false",
        ]

    def start(self, timeout: float = 60.0) -> LlamaServer:
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            if self._launch(timeout):
                return self
            if "address already in use" not in self.log().lower() or attempt == START_ATTEMPTS - 1:
                break
        raise RuntimeError(f"llama.cpp server did not start; its log ({self.log_path}):\n{self.log()[-4000:]}")

    def _launch(self, timeout: float) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._bound() and self._answers():
                return True
            time.sleep(0.1)
        self.stop()
        return False

    def _bound(self) -> bool:
        """Its log says it runs on this port (uvicorn's line): another process that took the port since it
        was chosen could answer /models while this one fails to bind."""
        return f"running on http://127.0.0.1:{self.port} " in self.log()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.v1}/models", timeout=1) as response:
                return response.status == 200 and bool(json.load(response).get("data"))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
