"""Streaming scenarios, driven by the asyncio client: 1 and N concurrent streams (TTFT, per-chunk
delay, chunks held back), and RSS while 1,000 streams are open."""

from __future__ import annotations

from bench.context import Bench, run_async
from bench.memory import hold_streams
from bench.stats import minus, percentile
from bench.streams import HELD_BACK_MS, StreamSamples, run_batch

MB = 1024 * 1024


def _batch_timeout(plan_chunks: int, interval_ms: int, streams: int, concurrency: int) -> float:
    """Generous but finite: three times the ideal duration of the batch, plus start-up slack."""
    waves = -(-streams // concurrency)
    return 3.0 * waves * plan_chunks * interval_ms / 1000.0 + 20.0


TTFT_CHUNKS, TTFT_INTERVAL_MS = 2, 5  # the `ttft` shape (targets.Shapes.ttft)
WARM_STREAMS = 5  # unmeasured streams per hop and streaming endpoint before the first measured one


def warm_streams(bench: Bench) -> None:
    """The HTTP warm-up sends only non-streamed requests: a hop's first stream (and its first request to
    the streaming upstream, a new origin for a gateway's connection pool) would otherwise be a measured
    sample. Every hop gets the same few unmeasured short streams (the `ttft` shape, served by the same
    upstream as the long ones), the direct baseline included."""
    for name in bench.names():
        if not bench.alive(name):
            run_async(run_batch(bench.hops[name].target.endpoints["ttft"], WARM_STREAMS, 1, TTFT_CHUNKS,
                                _batch_timeout(TTFT_CHUNKS, TTFT_INTERVAL_MS, WARM_STREAMS, 1)))


def stream_rounds(bench: Bench, streams: int, concurrency: int, ttft_streams: int = 0) -> dict[str, StreamSamples]:
    """Pooled samples per hop; with `ttft_streams`, each visit also runs that many two-chunk streams,
    whose first chunks add TTFT samples (their chunk delays are left out: they are not paced).

    Those samples are also split by how the stream started, because the two kinds differ by ~1 ms for
    every hop, direct included, and the few cold ones (33 of 630 in a full run) alone set the pooled p99:
    *back to back*, a short stream right after another on the same connection; *cold*, a paced stream
    (each follows one whose chunks came 20 ms apart, gaps in which every process of the chain sleeps) or a
    batch's first stream (a new connection). A cold start wakes every process in the chain on cold caches,
    and a hop adds two processes to that chain."""
    plan = bench.plan
    warm_streams(bench)
    timeout = _batch_timeout(plan.stream_chunks, plan.stream_interval_ms, streams, concurrency)
    pooled = {name: StreamSamples() for name in bench.names()}
    for index in range(plan.rounds):
        for name in bench.order(bench.names(), index):
            dead = bench.alive(name)
            if dead:
                pooled[name].failed += streams
                pooled[name].errors.append(dead)
                continue
            endpoints = bench.hops[name].target.endpoints
            paced = run_async(run_batch(endpoints["stream"], streams, concurrency, plan.stream_chunks, timeout,
                                        ramp_per_s=2000.0))
            pooled[name].merge(paced)
            if ttft_streams:
                short = run_async(run_batch(endpoints["ttft"], ttft_streams, 1, TTFT_CHUNKS,
                                            _batch_timeout(TTFT_CHUNKS, TTFT_INTERVAL_MS, ttft_streams, 1)))
                pooled[name].ttft_us += short.ttft_us
                # One at a time, so the first sample is the batch's first stream, on a new connection.
                pooled[name].ttft_cold_us += paced.ttft_us + short.ttft_us[:1]
                pooled[name].ttft_back_to_back_us += short.ttft_us[1:]
                pooled[name].failed += short.failed
                pooled[name].errors += short.errors[:2]
    return pooled


def _describe(samples: StreamSamples) -> dict:
    ms = 1e-3
    def pct(values: list[float], p: float) -> float | None:
        value = percentile(values, p)
        return None if value is None else value * ms
    return {
        "ttft_p50_ms": pct(samples.ttft_us, 50), "ttft_p99_ms": pct(samples.ttft_us, 99),
        "ttft_back_to_back_p50_ms": pct(samples.ttft_back_to_back_us, 50),
        "ttft_back_to_back_p99_ms": pct(samples.ttft_back_to_back_us, 99),
        # A few dozen cold samples a run: their p99 would be their maximum, so p90.
        "ttft_cold_p50_ms": pct(samples.ttft_cold_us, 50), "ttft_cold_p90_ms": pct(samples.ttft_cold_us, 90),
        "back_to_back_streams": len(samples.ttft_back_to_back_us), "cold_streams": len(samples.ttft_cold_us),
        "chunk_delay_p50_ms": pct(samples.chunk_delay_us, 50),
        "chunk_delay_p99_ms": pct(samples.chunk_delay_us, 99),
        "chunk_delay_max_ms": pct(samples.chunk_delay_us, 100),
        "held_back": samples.held_back, "held_back_threshold_ms": HELD_BACK_MS,
        "chunks": samples.chunks, "expected_chunks": samples.expected_chunks,
        "streams": len(samples.ttft_us), "failed_streams": samples.failed, "errors": samples.errors,
    }


def streaming(bench: Bench, streams: int, concurrency: int, ttft_streams: int = 0) -> dict:
    pooled = stream_rounds(bench, streams, concurrency, ttft_streams)
    described = {name: _describe(samples) for name, samples in pooled.items()}
    base = described["direct"]
    for row in described.values():
        for key in ("ttft_p50_ms", "ttft_p99_ms", "chunk_delay_p50_ms", "chunk_delay_p99_ms",
                    "ttft_back_to_back_p50_ms", "ttft_back_to_back_p99_ms", "ttft_cold_p50_ms", "ttft_cold_p90_ms"):
            row[f"added_{key}"] = minus(row[key], base[key])
    described["_shape"] = {"chunks": bench.plan.stream_chunks, "interval_ms": bench.plan.stream_interval_ms,
                           "concurrency": concurrency, "streams_per_round": streams,
                           "ttft_streams_per_round": ttft_streams}
    # If chunks arrive late even without a hop, the client or the upstream could not keep up (a busy
    # machine): then no hop's figure in this scenario means much, and the report says so.
    described["_baseline"] = {"direct_held_back": base["held_back"], "saturated": base["held_back"] > 0}
    return described


def memory(bench: Bench) -> dict:
    """Idle RSS (read at start-up) and peak RSS while `hold_streams` streams are open, per hop."""
    plan = bench.plan
    # The streams outlast the ramp; the batch stops itself once all are open, or ends with them.
    timeout = 1.5 * plan.hold_chunks * plan.hold_interval_ms / 1000.0 + plan.hold_streams / 1000.0 + 20.0
    result: dict[str, dict] = {}
    for name in bench.names(include_direct=False):
        running = bench.hops[name]
        row = {"idle_rss_mb": running.idle_rss / MB if running.idle_rss else None}
        dead = bench.alive(name)
        if dead:
            result[name] = row | {"error": dead}
            continue
        held = run_async(hold_streams(running.target.endpoints["hold"], running.child.pid, plan.hold_streams,
                                      plan.hold_chunks, timeout, ramp_per_s=1000.0))
        row |= {"streams_rss_mb": held.peak_rss / MB, "open_at_peak": held.open_at_peak,
                "max_open": held.max_open, "failed_streams": held.samples.failed,
                "errors": held.samples.errors}
        result[name] = row
    result["_shape"] = {"streams": plan.hold_streams, "chunks": plan.hold_chunks,
                        "interval_ms": plan.hold_interval_ms}
    return result
