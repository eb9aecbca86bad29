"""Least-busy against weighted load balancing, on two real llama.cpp servers, one of them made slower.

    .venv/bin/python -m demo.routing_bench                   # 32 clients, 3 rounds of each policy
    .venv/bin/python -m demo.routing_bench --clients 16 --requests 64 --rounds 1 --json out.json

Both model servers run one generation thread (demo/server.py). The slow one is pinned to CPU 0 at
``nice --slow-nice`` (4) beside ``--burners`` (1) busy-loop processes at normal priority: a concurrent
background load that leaves it about 30 % of that core when the machine is otherwise idle (CPU weights 423
against 1024), less when it is busy. The fast one is pinned to CPU 1; the gateway and the clients float. On
a 2-core machine there is no spare core, so "fewer threads" cannot make one of them slower; the background
load can. How much slower varies with the machine's own load (3 to 11 times on a shared 2-core machine with
nice 4 to 7): least-busy gives the slow one a share near its share of the speed, so a much slower server
gets less than 10 %.

Each round first sends ``--warmup`` unmeasured requests from 2 clients (a gateway that has been serving
knows its targets; without them the first burst splits evenly between two unknown servers), then
``--requests`` streamed chat completions from ``--clients`` concurrent clients through one
gateway, with an inline config per policy: ``loadbalance`` with equal weights (``weighted``, the default:
a weighted random draw) and ``loadbalance`` with ``"policy": "least-busy"``. Rounds alternate the policies
so that the machine's drift hits both alike. Time to first token is measured at the client, from the request
to the first chunk with content; the backend that answered comes from ``x-portkey-last-used-option-index``.
Everything binds 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from demo.build import find_built
from demo.gateway import DemoGateway
from demo.server import MODEL_ALIAS, LlamaServer, free_port

PROMPT = "Write one sentence about the sea, number {n}."
BURN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


class PinnedServer(LlamaServer):
    """A model server bound to one CPU (``taskset``), at a lower priority when ``nice`` is above 0."""

    def __init__(self, *args, cpu: int, nice: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cpu = cpu
        self.nice = nice

    def command(self) -> list[str]:
        return ["taskset", "-c", str(self.cpu), "nice", "-n", str(self.nice), *super().command()]


@contextmanager
def burners(cpu: int, count: int, limit_s: float) -> Iterator[list[subprocess.Popen]]:
    """``count`` busy loops pinned to ``cpu``, each ending by itself after ``limit_s`` at the latest."""
    procs = [subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", BURN.format(limit=limit_s)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)


def config(policy: str, fast_v1: str, slow_v1: str) -> str:
    strategy = {"mode": "loadbalance", **({"policy": policy} if policy != "weighted" else {})}
    return json.dumps({"strategy": strategy, "targets": [
        {"provider": "openai", "api_key": "no-key-needed", "custom_host": fast_v1, "weight": 1},
        {"provider": "openai", "api_key": "no-key-needed", "custom_host": slow_v1, "weight": 1}]})


@dataclass
class Sample:
    target: str | None  # "config.targets[0]" (fast) or "config.targets[1]" (slow)
    status: int
    ttft_s: float | None
    total_s: float
    error: str | None = None  # what went wrong, for a request that did not end in a 200


@dataclass
class RoundResult:
    policy: str
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict:
        return summarize(self.policy, self.samples, self.wall_s)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(policy: str, samples: Sequence[Sample], wall_s: float) -> dict:
    ttfts = [s.ttft_s for s in samples if s.ttft_s is not None and s.status == 200]
    targets = [s.target for s in samples if s.status == 200]
    shares = {t: targets.count(t) / len(targets) for t in sorted({t for t in targets if t})} if targets else {}
    by_target = {}
    for target in sorted({s.target for s in samples if s.target}):
        mine = [s for s in samples if s.target == target and s.status == 200 and s.ttft_s is not None]
        by_target[target] = {"ttft_p95_s": percentile([s.ttft_s for s in mine], 95),  # type: ignore[misc]
                             "total_mean_s": sum(s.total_s for s in mine) / len(mine) if mine else None}
    errors = [s.error for s in samples if s.error]
    return {"policy": policy, "requests": len(samples), "ok": sum(s.status == 200 and not s.error for s in samples),
            "errors": errors[:5],
            "by_target": by_target,
            "ttft_p50_s": percentile(ttfts, 50), "ttft_p95_s": percentile(ttfts, 95),
            "ttft_mean_s": sum(ttfts) / len(ttfts) if ttfts else None,
            "share": shares, "wall_s": round(wall_s, 2)}


async def one_request(client, url: str, headers: dict, n: int, max_tokens: int) -> Sample:
    body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": PROMPT.format(n=n)}],
            "max_tokens": max_tokens, "stream": True}
    started = time.monotonic()
    ttft = None
    error = None
    async with client.stream("POST", url, headers=headers, json=body) as response:
        target = response.headers.get("x-portkey-last-used-option-index")
        async for line in response.aiter_lines():
            if ttft is None and line.startswith("data: ") and '"content"' in line and line != "data: [DONE]":
                ttft = time.monotonic() - started
            if '"error"' in line and error is None:
                error = line[:300]
        status = response.status_code
    if status != 200 and error is None:
        error = f"HTTP {status}"
    return Sample(target, status if error is None else status or 0, ttft, time.monotonic() - started, error)


async def run_round(gateway_v1: str, policy: str, fast_v1: str, slow_v1: str, *, clients: int, requests: int,
                    max_tokens: int, timeout_s: float, warmup: int = 0) -> RoundResult:
    """``warmup`` requests from 2 clients first, not measured: a gateway that has been serving knows its
    targets' speeds; the timed phase then measures the steady state, not the first seconds after start."""
    if warmup:
        await run_round(gateway_v1, policy, fast_v1, slow_v1, clients=min(2, clients), requests=warmup,
                        max_tokens=max_tokens, timeout_s=timeout_s)
    import httpx  # the gateway's venv has it; demo.build (system python) never imports this module

    url = f"{gateway_v1}/chat/completions"
    headers = {"x-portkey-config": config(policy, fast_v1, slow_v1)}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    result = RoundResult(policy)

    async def client_loop(client) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            try:
                result.samples.append(await one_request(client, url, headers, n, max_tokens))
            except httpx.HTTPError as exc:
                result.samples.append(Sample(None, 0, None, 0.0, f"{type(exc).__name__}: {exc}"[:300]))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5), limits=limits,
                                 trust_env=False) as client:
        await asyncio.wait_for(asyncio.gather(*(client_loop(client) for _ in range(clients))), timeout_s)
    result.wall_s = time.monotonic() - started
    return result


async def compare(gateway_v1: str, fast_v1: str, slow_v1: str, *, clients: int, requests: int, rounds: int,
                  max_tokens: int, timeout_s: float, warmup: int = 6) -> dict:
    """Alternate the policies ``rounds`` times; the summary pools each policy's samples."""
    pooled: dict[str, list[Sample]] = {"weighted": [], "least-busy": []}
    walls = {"weighted": 0.0, "least-busy": 0.0}
    per_round = []
    for index in range(rounds):
        order = ("weighted", "least-busy") if index % 2 == 0 else ("least-busy", "weighted")
        for policy in order:
            result = await run_round(gateway_v1, policy, fast_v1, slow_v1, clients=clients, requests=requests,
                                     max_tokens=max_tokens, timeout_s=timeout_s, warmup=warmup)
            pooled[policy] += result.samples
            walls[policy] += result.wall_s
            per_round.append(result.summary())
    summaries = {policy: summarize(policy, samples, walls[policy]) for policy, samples in pooled.items()}
    weighted, least = summaries["weighted"]["ttft_p95_s"], summaries["least-busy"]["ttft_p95_s"]
    reduction = None if not weighted or least is None else 1 - least / weighted
    return {"clients": clients, "requests_per_round": requests, "rounds": rounds, "max_tokens": max_tokens,
            "warmup_per_round": warmup,
            "summary": summaries, "rounds_detail": per_round, "p95_ttft_reduction": reduction}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=96, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per policy (alternated)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=6, help="unmeasured requests (2 clients) before each round")
    parser.add_argument("--burners", type=int, default=1, help="busy loops pinned beside the slow server")
    parser.add_argument("--slow-nice", type=int, default=4, help="the slow server's nice value")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on one round, seconds")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 1 <= args.requests <= 5000 or not 1 <= args.rounds <= 20:
        parser.error("clients 1..256, requests 1..5000, rounds 1..20")
    built = find_built()
    if built is None:
        print("llama.cpp server not built: run `python3 -m demo.build` first", file=sys.stderr)
        return 2
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sluicegate-routing-bench-") as tmp:
        root = Path(tmp)
        fast = PinnedServer(built["python"], built["gguf"], root / "fast.log", cpu=1).start()
        stack.callback(fast.stop)
        slow = PinnedServer(built["python"], built["gguf"], root / "slow.log", cpu=0, nice=args.slow_nice).start()
        stack.callback(slow.stop)
        gateway = DemoGateway(root / "gateway", free_port()).start()
        stack.callback(gateway.stop)
        limit = args.timeout * args.rounds * 2 + 60
        stack.enter_context(burners(0, args.burners, limit))
        result = asyncio.run(compare(f"{gateway.url}/v1", fast.v1, slow.v1, clients=args.clients,
                                     requests=args.requests, rounds=args.rounds, max_tokens=args.max_tokens,
                                     timeout_s=args.timeout, warmup=args.warmup))
    result["setup"] = {"burners_on_slow_cpu": args.burners, "slow_nice": args.slow_nice,
                       "cpus": os.cpu_count(),
                       "slow": "config.targets[1] (CPU 0, niced, + burners)", "fast": "config.targets[0] (CPU 1)"}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
