"""One stream's time to first token, split by how each stream started (bench/scen_stream.py), and its table."""

from __future__ import annotations

from pathlib import Path

from pytest import approx

from bench import report, scen_stream, targets
from bench.context import Bench
from bench.launch import Running
from bench.plan import PLANS
from bench.streams import StreamSamples

# What each hop's scripted batches return (µs): the paced batch, then the short streams one at a time,
# whose first sample is the batch's first stream.
PACED = {"direct": [1500.0, 1700.0], "hop": [4000.0, 4400.0]}
SHORT = {"direct": [2000.0, 400.0, 420.0, 410.0], "hop": [3000.0, 900.0, 1000.0, 950.0]}


def _bench(tmp_path: Path) -> Bench:
    ups, shapes = targets.Upstreams(1, 2), targets.Shapes()
    hops = {name: Running(targets.Target(name, "gateway", {"stream": targets.Endpoint(name, {}, b"paced"),
                                                           "ttft": targets.Endpoint(name, {}, b"short")}),
                          None, None, None)
            for name in ("direct", "hop")}
    return Bench(PLANS["smoke"], tmp_path, None, ups, shapes, [], "", hops)  # type: ignore[arg-type]


def _scripted(monkeypatch) -> None:
    async def run_batch(endpoint, streams, concurrency, chunks, timeout_s, ramp_per_s=0.0):
        script = PACED if endpoint.body == b"paced" else SHORT
        return StreamSamples(ttft_us=list(script[endpoint.url]), expected_chunks=streams * chunks,
                             chunks=streams * chunks)
    monkeypatch.setattr(scen_stream, "run_batch", run_batch)


def test_each_first_token_is_filed_by_how_its_stream_started(tmp_path, monkeypatch):
    _scripted(monkeypatch)
    result = scen_stream.streaming(_bench(tmp_path), 2, 1, 4)
    hop, direct = result["hop"], result["direct"]
    rounds = PLANS["smoke"].rounds
    assert hop["streams"] == 6 * rounds  # every sample still counts for the bar's pooled figures
    # paced streams and each short batch's first are cold; the other short streams are back to back
    assert (hop["cold_streams"], hop["back_to_back_streams"]) == (3 * rounds, 3 * rounds)
    assert hop["ttft_back_to_back_p50_ms"] == approx(0.95) and direct["ttft_back_to_back_p50_ms"] == approx(0.41)
    assert hop["ttft_cold_p50_ms"] == approx(4.0) and direct["ttft_cold_p50_ms"] == approx(1.7)
    assert hop["added_ttft_back_to_back_p50_ms"] == approx(0.54)
    assert hop["added_ttft_cold_p50_ms"] == approx(2.3)
    assert hop["added_ttft_cold_p90_ms"] is not None and hop["added_ttft_back_to_back_p99_ms"] is not None


def test_many_streams_at_once_are_not_split(tmp_path, monkeypatch):
    _scripted(monkeypatch)
    result = scen_stream.streaming(_bench(tmp_path), 2, 2)
    assert result["hop"]["cold_streams"] == result["hop"]["back_to_back_streams"] == 0
    assert result["hop"]["added_ttft_cold_p50_ms"] is None and result["hop"]["ttft_p99_ms"] is not None


def test_the_report_shows_both_kinds_of_start_beside_the_bars_figure():
    results = {"hops": {"direct": {"status": "ok"}, "sluicegate": {"status": "ok"}},
               "scenarios": {"stream_c1": {
                   "direct": {"streams": 630, "back_to_back_streams": 597, "cold_streams": 33},
                   "sluicegate": {"added_ttft_p99_ms": 1.67, "added_ttft_back_to_back_p50_ms": 0.55,
                                  "added_ttft_back_to_back_p99_ms": 0.97, "added_ttft_cold_p50_ms": 1.2,
                                  "added_ttft_cold_p90_ms": 2.4}}}}
    text = report.ttft_start_table(results)
    assert ("| hop | all 630: added TTFT p99 ms (the bar's) | back to back (597): added p50 / p99 ms "
            "| cold (33): added p50 / p90 ms |") in text
    assert "| sluicegate | 1.67 | 0.55 / 0.97 | 1.20 / 2.40 |" in text
    assert "| direct | — | — / — | — / — |" in text
    assert "One stream's time to first token, by how the stream started" in report.render(results)
