"""The bars from issues 7 and 14, judged against one run's results. Pure: results dict in, verdicts out.

A bar whose figure is missing (peer not installed, scenario not run, hop died) is "n/a", never "pass".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench import gap

SUBJECT = "sluicegate"


@dataclass(frozen=True)
class Bar:
    key: str
    text: str
    limit: float
    unit: str
    higher_is_better: bool
    value: Callable[[dict], float | None]
    invalid: Callable[[dict], str] = lambda _r: ""  # a reason the figure cannot be judged, or ''


def _get(results: dict, *path: str) -> Any:
    node: Any = results
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def _rps_ratio(peer: str) -> Callable[[dict], float | None]:
    def value(r: dict) -> float | None:
        ours = _get(r, "scenarios", "throughput", SUBJECT, "rps")
        theirs = _get(r, "scenarios", "throughput", peer, "rps")
        return ours / theirs if ours and theirs else None
    return value


BAR_STREAMS = 1000


def _streams_rss(r: dict) -> float | None:
    row = _get(r, "scenarios", "memory", SUBJECT) or {}
    wanted = _get(r, "scenarios", "memory", "_shape", "streams") or 0
    if wanted < BAR_STREAMS or not row.get("streams_rss_mb") or row.get("max_open", 0) < 0.95 * wanted:
        return None  # fewer streams than the bar names, or never held open: no figure for this bar
    return row["streams_rss_mb"]


def _held_back(scenario: str) -> Callable[[dict], float | None]:
    def value(r: dict) -> float | None:
        row = _get(r, "scenarios", scenario, SUBJECT)
        return None if not row or not row.get("streams") else float(row["held_back"])
    return value


def _saturated(scenario: str) -> Callable[[dict], str]:
    def reason(r: dict) -> str:
        held = _get(r, "scenarios", scenario, "_baseline", "direct_held_back")
        return f"baseline saturated: {held} chunks late even without a hop" if held else ""
    return reason


BARS = (
    Bar("rps_vs_portkey", "throughput ≥ 3× Portkey's gateway (c=50)", 3.0, "×", True, _rps_ratio("portkey")),
    Bar("rps_vs_litellm", "throughput ≥ 40× LiteLLM's proxy (c=50)", 40.0, "×", True, _rps_ratio("litellm")),
    Bar("added_p50", "added latency at c=1, p50 ≤ 200 µs", 200.0, "µs", False,
        lambda r: _get(r, "scenarios", "latency_c1", SUBJECT, "added_p50_us")),
    Bar("added_p99", "added latency at c=1, p99 ≤ 1 ms", 1000.0, "µs", False,
        lambda r: _get(r, "scenarios", "latency_c1", SUBJECT, "added_p99_us")),
    Bar("ttft_p99_c1", "streaming added TTFT p99 ≤ 1 ms (1 stream)", 1.0, "ms", False,
        lambda r: _get(r, "scenarios", "stream_c1", SUBJECT, "added_ttft_p99_ms"), _saturated("stream_c1")),
    Bar("ttft_p99_many", "streaming added TTFT p99 ≤ 1 ms (many streams)", 1.0, "ms", False,
        lambda r: _get(r, "scenarios", "stream_many", SUBJECT, "added_ttft_p99_ms"), _saturated("stream_many")),
    Bar("held_back_c1", "no chunk held back (1 stream)", 0.0, "chunks", False, _held_back("stream_c1"),
        _saturated("stream_c1")),
    Bar("held_back_many", "no chunk held back (many streams)", 0.0, "chunks", False, _held_back("stream_many"),
        _saturated("stream_many")),
    Bar("streams_rss", "1,000 concurrent open streams in ≤ 300 MB RSS", 300.0, "MB", False, _streams_rss),
    Bar("workers_speedup", "--workers 2 ≥ 1.6× one worker (c=100)", 1.6, "×", True,
        lambda r: _get(r, "scenarios", "scaling", "speedup")),
    Bar("startup", "startup to first 200 ≤ 1 s", 1.0, "s", False,
        lambda r: _get(r, "hops", SUBJECT, "startup_s")),
    Bar("idle_rss", "idle RSS ≤ 80 MB", 80.0, "MB", False,
        lambda r: _get(r, "hops", SUBJECT, "idle_rss_mb")),
    # Issue 14: against the floor of a Python hop, measured in the same run (bench/floor/).
    Bar("rps_vs_floor", "throughput ≥ 0.6× the granian + pyreqwest minimal hop (c=50)", 0.6, "×", True,
        lambda r: gap.reference(r, "rps_ratio")),
    Bar("added_p50_vs_floor", "added p50 at c=1 ≤ 1.3× the granian + pyreqwest minimal hop's", 1.3, "×", False,
        lambda r: gap.reference(r, "added_p50_ratio")),
)


def judge(results: dict) -> list[dict]:
    verdicts = []
    for bar in BARS:
        value, note = bar.value(results), bar.invalid(results)
        if value is None or note:
            verdict = "n/a"
        elif bar.higher_is_better:
            verdict = "pass" if value >= bar.limit else "miss"
        else:
            verdict = "pass" if value <= bar.limit else "miss"
        row = {k: v for k, v in asdict(bar).items() if k not in ("value", "invalid")}
        verdicts.append(row | {"value": value, "verdict": verdict, "note": note})
    return verdicts
