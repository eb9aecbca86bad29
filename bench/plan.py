"""How long and how hard each mode runs. One frozen Plan per mode; nothing else holds durations."""

from __future__ import annotations

from dataclasses import dataclass, replace

# Names as in launch.MINIMAL_HOPS; kept here as plain strings so a Plan stays pure data.
ALL_MINIMAL = ("min-granian-pyreqwest", "min-aiohttp-pyreqwest", "min-granian-aiohttp", "min-aiohttp-aiohttp",
               "min-granian-asgi-pyreqwest")


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int              # A B A B …: every target once per round, order rotated each round
    warmup_s: float          # unmeasured wrk load per hop first (JIT, pools, caches)
    latency_s: float         # wrk, 1 connection, per hop per round
    throughput_s: float      # wrk, `throughput_c` connections, per hop per round
    stream_chunks: int       # the fast SSE shape: chunks …
    stream_interval_ms: int  # … this far apart
    stream_c1: int           # sequential streams per hop per round
    ttft_c1: int             # sequential two-chunk streams per hop per round, for the TTFT percentiles
    stream_many: int         # concurrent streams per hop per round
    hold_streams: int        # concurrent open streams for the memory scenario
    hold_chunks: int         # long enough to outlast the ramp: the scenario stops itself once
    hold_interval_ms: int    # every stream has been seen open, so it rarely runs to the end
    settle_s: float          # pause after the first 200 before reading idle RSS
    throughput_c: int = 50
    workers: int = 2
    workers_c: int = 100
    peers: bool = True       # install and run LiteLLM and Portkey
    floor: bool = True       # nginx proxy_pass
    minimal: tuple[str, ...] = ALL_MINIMAL  # the minimal Python hops (bench/floor/, issue 14) to run
    scaling: bool = True     # sluicegate --workers N
    fallback: bool = True    # 3-target fallback config, where a hop supports it
    replicas: int = 3        # `make cluster`: N sluicegates on PostgreSQL + Redis behind nginx (0: not run)
    threads: int = 1         # wrk threads: one, so the hop keeps the other core

    @property
    def stream_model(self) -> str:
        return f"sse-{self.stream_chunks}x{self.stream_interval_ms}"

    @property
    def hold_model(self) -> str:
        return f"sse-{self.hold_chunks}x{self.hold_interval_ms}"


FULL = Plan(mode="full", rounds=3, warmup_s=3, latency_s=10, throughput_s=10, stream_chunks=64,
            stream_interval_ms=20, stream_c1=10, ttft_c1=200, stream_many=200, hold_streams=1000, hold_chunks=60,
            hold_interval_ms=500, settle_s=2.0)
QUICK = replace(FULL, mode="quick", rounds=1, warmup_s=1, latency_s=2, throughput_s=2, stream_chunks=16,
                stream_c1=3, ttft_c1=100, hold_chunks=20, settle_s=1.0)
SMOKE = replace(QUICK, mode="smoke", warmup_s=0, latency_s=1, throughput_s=1, stream_chunks=8,
                stream_interval_ms=10, stream_c1=2, ttft_c1=10, stream_many=20, hold_streams=50, hold_chunks=20,
                hold_interval_ms=200, settle_s=0.2, peers=False, floor=False, scaling=False,
                fallback=False, minimal=ALL_MINIMAL[:1], replicas=2)
PLANS = {plan.mode: plan for plan in (FULL, QUICK, SMOKE)}
