"""Drive wrk against one endpoint and read back its numbers as JSON.

Why wrk for both throughput and the c=1 latency: it is C, keeps its own per-request cost to a few µs
that do not vary, and records every request's latency in a per-microsecond histogram, so p50/p99 at
c=1 reflect the hop and not the client's event loop or garbage collector, which in a Python client
would be a visible fraction of a 200 µs budget. The Lua script sets the POST body and headers once
(no per-request Lua), and its `done` hook prints the summary as one JSON line.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.targets import Endpoint

MARK = "BENCH_JSON "
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    errors: int  # connect/read/write errors, timeouts and non-2xx/3xx answers together
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    mean_us: float

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal whose level cannot clash with the text."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def lua_script(endpoint: Endpoint) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(endpoint.body.decode())}"]
    for name, value in endpoint.headers.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    pct = ",".join(f'"p{str(p).replace(".", "_")}":%.1f' for p in PERCENTILES)
    calls = ", ".join(f"latency:percentile({p})" for p in PERCENTILES)
    lines.append(f"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{MARK}{{"requests":%d,"duration_us":%d,"errors":%d,"mean_us":%.1f,{pct}}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency.mean, {calls}))
end""")
    return "\n".join(lines) + "\n"


def run(endpoint: Endpoint, connections: int, duration_s: float, threads: int, script_dir: Path) -> WrkResult:
    """One bounded wrk run: `-d` bounds it in time (and so in count); an outer timeout backs that up."""
    script_dir.mkdir(parents=True, exist_ok=True)
    script = script_dir / "post.lua"
    script.write_text(lua_script(endpoint))
    argv = ["wrk", f"-t{max(1, min(threads, connections))}", f"-c{connections}", f"-d{duration_s:g}s",
            "--timeout", "10s", "-s", str(script), endpoint.url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    return parse(done.stdout, done.stderr)


def parse(stdout: str, stderr: str = "") -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            duration = data["duration_us"] / 1e6
            return WrkResult(
                requests=data["requests"], duration_s=duration,
                rps=data["requests"] / duration if duration else 0.0, errors=data["errors"],
                p50_us=data["p50_0"], p90_us=data["p90_0"], p99_us=data["p99_0"], p999_us=data["p99_9"],
                mean_us=data["mean_us"],
            )
    raise RuntimeError(f"wrk printed no summary: {stdout[-500:]} {stderr[-500:]}")
