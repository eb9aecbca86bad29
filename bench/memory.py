"""RSS of a hop while it holds many streams open at once (and the idle figure's helper).

The sampler reads /proc every SAMPLE_S while the streams run and keeps the peak, with how many
streams were open at that moment, so a hop that never reached N open streams cannot report a small
number for N.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.procs import rss_bytes
from bench.streams import OpenCount, StreamSamples, run_batch
from bench.targets import Endpoint

SAMPLE_S = 0.1
HOLD_SAMPLES = 10  # once every stream is open, sample this many more times, then let them go


@dataclass
class HeldStreams:
    peak_rss: int
    open_at_peak: int
    max_open: int
    samples: StreamSamples


async def _sample(leader: int, count: OpenCount, wanted: int, stop: asyncio.Event, peak: list[int]) -> None:
    """peak = [bytes, open streams then]; sets `stop` once all `wanted` streams were open a while."""
    after_all_open = 0
    while not stop.is_set():
        rss = rss_bytes(leader)
        if rss >= peak[0]:
            peak[0], peak[1] = rss, count.now
        if count.now >= wanted:
            after_all_open += 1
            if after_all_open >= HOLD_SAMPLES:
                stop.set()
                return
        await asyncio.sleep(SAMPLE_S)


async def hold_streams(endpoint: Endpoint, leader: int, streams: int, chunks: int, timeout_s: float,
                       ramp_per_s: float) -> HeldStreams:
    """Open `streams` long streams, sample the hop's RSS until all are open (plus a second), then stop."""
    count, stop, peak = OpenCount(), asyncio.Event(), [0, 0]
    sampler = asyncio.ensure_future(_sample(leader, count, streams, stop, peak))
    try:
        samples = await run_batch(endpoint, streams, streams, chunks, timeout_s, ramp_per_s, count, stop)
    finally:
        stop.set()
        await sampler
    return HeldStreams(peak_rss=peak[0], open_at_peak=peak[1], max_open=count.peak, samples=samples)
