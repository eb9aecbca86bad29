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
