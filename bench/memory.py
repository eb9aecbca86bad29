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


@dataclass
class HeldStreams:
    peak_rss: int
    open_at_peak: int
    max_open: int
    samples: StreamSamples


async def _sample(leader: int, count: OpenCount, stop: asyncio.Event, peak: list[int]) -> None:
    """peak = [bytes, open streams then]; updated until `stop` is set."""
    while not stop.is_set():
        rss = rss_bytes(leader)
        if rss >= peak[0]:
            peak[0], peak[1] = rss, count.now
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_S)
        except asyncio.TimeoutError:
            pass


async def hold_streams(endpoint: Endpoint, leader: int, streams: int, chunks: int, timeout_s: float,
                       ramp_per_s: float) -> HeldStreams:
    count, stop, peak = OpenCount(), asyncio.Event(), [0, 0]
    sampler = asyncio.ensure_future(_sample(leader, count, stop, peak))
    try:
        samples = await run_batch(endpoint, streams, streams, chunks, timeout_s, ramp_per_s, count)
    finally:
        stop.set()
        await sampler
    return HeldStreams(peak_rss=peak[0], open_at_peak=peak[1], max_open=count.peak, samples=samples)
