"""Instructions per request, per thread: the gateway's CPU work counted by callgrind instead of timed.

    .venv/bin/python -m bench.instructions [--seconds 15] [--connections 50] [--stream] [--env NAME=VALUE ...]

On a shared 2-core VM the same build's loop CPU per request moves by ±20 % from one 5 s window to the
next, so a change worth 5 % needs many interleaved rounds to show. Instructions retired do not move with
the machine: two runs of one build agree within ~2 %, and leaving a part of the request path out shows as
exactly what that part costs. The gateway runs under valgrind's callgrind (about 50 times slower, so a run
handles ~1,000-1,500 requests) with counting off; after a warm-up, counting is switched on for a wrk load
of ``--seconds`` at ``--connections``, then kept on while the gateway goes idle (so that the request log's
deferred work, finished and written after the answers, is counted too), then switched off. The figure is
each thread's instructions divided by the requests answered: the event loop's (thread 1) is the one
issue 14's bars depend on; the log writer's runs beside it, mostly outside the GIL.

``--stream`` prices a streaming request instead: the bench's two-chunk stream (``sse-2x5``, the TTFT shape)
from its paced SSE upstream (bench/sse_upstream.py), relayed through the gateway.

What it cannot see: the kernel's share (system calls, the loopback), and time that is not instructions
(cache misses, waiting for the GIL). It prices work, not latency: confirm a win with the bench's wrk runs.
Needs valgrind (``apt-get install valgrind``), wrk and nginx; loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import nginx_conf, wrk
from bench.procs import Supervisor, free_port
from bench.ready import wait_first_200
from bench.targets import Endpoint, Shapes, Upstreams, portkey_style

WARMUP_S = 5.0
IDLE_S = 10.0  # the request log drains its queue and the writer commits well within this, even 50x slower
START_TIMEOUT_S = 180.0  # importing everything under callgrind takes tens of seconds


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=60)


def thread_totals(directory: Path, pid: int) -> dict[int, int]:
    """{thread number: instructions} from the dumps callgrind wrote for ``pid`` (``--separate-threads``)."""
    totals = {}
    for path in directory.glob(f"callgrind.{pid}.*-*"):
        thread = int(path.name.rsplit("-", 1)[1])
        match = re.search(r"^totals: (\d+)", path.read_text(errors="replace"), re.MULTILINE)
        if match:
            totals[thread] = totals.get(thread, 0) + int(match.group(1))
    return totals


def measure(env: dict[str, str], seconds: float, connections: int, work: Path,
            stream: bool = False) -> tuple[int, dict[int, int]]:
    """(requests answered while counting, {thread: instructions}) for one gateway under callgrind; ``stream``:
    the two-chunk stream's request instead of the static one."""
    static_port, sse_port, gateway_port = free_port(), free_port(), free_port()
    (work / "nginx" / "logs").mkdir(parents=True)
    (work / "nginx" / "tmp").mkdir()
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(nginx_conf.static_upstream(str(work / "nginx"), static_port))
    dumps = work / "callgrind"
    dumps.mkdir()
    gateway_env = os.environ | env | {"SLUICEGATE_DATA_DIR": str(work / "data")}
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            f"--callgrind-out-file={dumps}/callgrind.%p", sys.executable, "-m", "sluicegate", "serve",
            "--host", "127.0.0.1", "--port", str(gateway_port)]
    endpoint: Endpoint = portkey_style("sluicegate", "gateway", gateway_port, Upstreams(static_port, sse_port),
                                       Shapes()).endpoints["ttft" if stream else "static"]
    with Supervisor(work / "logs") as supervisor:
        supervisor.start("nginx", ["nginx", "-p", str(work / "nginx"), "-c", str(conf)])
        if stream:
            supervisor.start("sse-upstream", [sys.executable, "-m", "bench.sse_upstream", "--port", str(sse_port)])
        gateway = supervisor.start("gateway", argv, env=gateway_env)
        wait_first_200(endpoint, gateway, START_TIMEOUT_S, b"[DONE]" if stream else nginx_conf.STATIC_ID.encode())
        wrk.run(endpoint, connections, WARMUP_S, 1, work / "wrk")
        time.sleep(IDLE_S)  # the warm-up's own log records are written before counting starts
        _control(gateway.pid, "--instr=on")
        loaded = wrk.run(endpoint, connections, seconds, 1, work / "wrk")
        time.sleep(IDLE_S)
        _control(gateway.pid, "--instr=off")
        _control(gateway.pid, "--dump")
        totals = thread_totals(dumps, gateway.pid)
    return loaded.requests, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--stream", action="store_true", help="price the two-chunk stream's request")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the gateway (repeatable), e.g. SLUICEGATE_LOG_JOURNAL=off")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="sluicegate-instructions-") as tmp:
        requests, totals = measure(env, args.seconds, args.connections, Path(tmp), args.stream)
    if not requests:
        sys.exit("no request was answered while counting")
    settings = " ".join(args.env) or "defaults"
    kind = "streams" if args.stream else "requests"
    print(f"{requests} {kind} counted ({args.seconds:g} s at c={args.connections}; {settings})")
    for thread, instructions in sorted(totals.items()):
        if instructions >= requests * 1000:  # threads that did something per request
            print(f"  thread {thread}: {instructions / requests:,.0f} instructions per request")


if __name__ == "__main__":
    main()
