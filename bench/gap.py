"""How far sluicegate is from the floor of a Python hop (issue 14). Pure: results dict in, figures out.

For each minimal hop (bench/floor/) that ran: its req/s at c=50 and added p50 at c=1, and sluicegate's
figures as ratios to them. "rps_ratio" is sluicegate ÷ hop (higher is closer); "added_p50_ratio" is
sluicegate ÷ hop (lower is closer). The reference hop for the issue's bars is REFERENCE.
"""

from __future__ import annotations

SUBJECT = "sluicegate"
REFERENCE = "min-granian-pyreqwest"


def _row(results: dict, scenario: str, name: str) -> dict:
    node = results.get("scenarios", {}).get(scenario, {})
    row = node.get(name) if isinstance(node, dict) else None
    return row if isinstance(row, dict) else {}


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def floor_gap(results: dict) -> dict:
    """{minimal hop: {rps, added_p50_us, rps_ratio, added_p50_ratio}} for every minimal hop measured."""
    ours_rps = _row(results, "throughput", SUBJECT).get("rps")
    ours_p50 = _row(results, "latency_c1", SUBJECT).get("added_p50_us")
    gap = {}
    for name, hop in results.get("hops", {}).items():
        if hop.get("role") != "minimal" or hop.get("status") != "ok":
            continue
        rps = _row(results, "throughput", name).get("rps")
        p50 = _row(results, "latency_c1", name).get("added_p50_us")
        gap[name] = {"version": hop.get("version"), "rps": rps, "added_p50_us": p50,
                     "rps_ratio": _div(ours_rps, rps), "added_p50_ratio": _div(ours_p50, p50)}
    return gap


def reference(results: dict, key: str) -> float | None:
    """One of sluicegate's ratios to the reference minimal hop, or None when either side has no figure."""
    return floor_gap(results).get(REFERENCE, {}).get(key)
