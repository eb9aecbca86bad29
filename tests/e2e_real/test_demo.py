"""`make demo` end to end, non-interactive: `--check` starts everything, runs the first round of requests
(the ones it prints as examples), and must stop every process it started."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # `python -m demo` runs from the repository root


def _listening(url: str) -> bool:
    host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_demo_check_runs_the_examples_and_cleans_up(llama_build):
    result = subprocess.run([sys.executable, "-m", "demo", "--check", "--port", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=110)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "✓ direct:" in out and "✗" not in out
    for snippet in ("curl http://127.0.0.1:", "from portkey_ai import Portkey", "from openai import OpenAI",
                    "x-portkey-config"):
        assert snippet in out
    urls = re.findall(r"http://127\.0\.0\.1:\d+", out.split("\n\n")[0])
    assert len(set(urls)) >= 3  # two model servers and the gateway were announced …
    assert not [url for url in set(urls) if _listening(url)]  # … and none is left running


def test_a_picked_port_another_process_took_is_traded_for_another(tmp_path):
    """The port was free when the demo picked it, not reserved: another process bound it first (in CI, a
    test's fake upstream that answers 200 to anything), the gateway failed to bind, and the demo talked to
    the stranger: "direct: 'echo: …'", then a TypeError. A port the user chose is not traded."""
    import http.server
    import threading
    from contextlib import ExitStack

    import pytest

    from demo.__main__ import _start_gateway

    class Anything(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    stranger = http.server.HTTPServer(("127.0.0.1", 0), Anything)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    taken = stranger.server_address[1]
    try:
        with ExitStack() as stack:
            gateway = _start_gateway(tmp_path / "picked", taken, stack, chosen=False)
            assert gateway.port != taken and f"listening on {gateway.url} " in gateway.log_path.read_text()
            with pytest.raises(RuntimeError, match="the gateway exited with 2"):
                _start_gateway(tmp_path / "chosen", taken, stack, chosen=True)
    finally:
        stranger.shutdown()
