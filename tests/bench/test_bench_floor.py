"""The minimal hops' pure parts: the one-field edit, the command lines, and the distance to the floor."""

from __future__ import annotations

import json

import pytest

from bench import bars, gap, launch, targets
from bench.plan import ALL_MINIMAL, PLANS

orjson = pytest.importorskip("orjson")  # bench/floor/common.py runs in the floor venv, where orjson is pinned


def test_rewrite_changes_one_field_and_reads_the_stream_flag():
    from bench.floor.common import MARK_FIELD, MARK_VALUE, rewrite

    body, stream = rewrite(b'{"model":"m","stream":true,"messages":[]}')
    assert json.loads(body) == {"model": "m", "stream": True, "messages": [], MARK_FIELD: MARK_VALUE}
    assert stream is True
    assert rewrite(b'{"model":"m"}')[1] is False


def test_the_hops_forward_only_to_loopback():
    from bench.floor.common import is_local

    assert is_local("http://127.0.0.1:8080")
    assert not is_local("http://10.0.0.1:8080")
    assert not is_local("http://127.0.0.1.example.com:80")


def test_every_planned_minimal_hop_has_a_launcher():
    assert set(ALL_MINIMAL) == set(launch.MINIMAL_HOPS)
    assert PLANS["full"].minimal == PLANS["quick"].minimal == ALL_MINIMAL
    assert PLANS["smoke"].minimal == ("min-granian-pyreqwest",)


def test_command_lines_bind_loopback_with_one_worker():
    granian = launch.minimal_argv("min-granian-pyreqwest", "py", 9000)
    assert granian[:3] == ["py", "-m", "granian"] and granian[-1] == "bench.floor.granian_pyreqwest:app"
    assert granian[granian.index("--host") + 1] == "127.0.0.1" and granian[granian.index("--workers") + 1] == "1"
    assert launch.minimal_argv("min-aiohttp-aiohttp", "py", 9000) == ["py", "-m", "bench.floor.aiohttp_aiohttp",
                                                                      "--port", "9000"]


def test_version_lists_only_the_hops_packages():
    installed = "granian 2.8.9, pyreqwest 0.15.1, aiohttp 3.14.5, orjson 3.13.0, uvloop 0.23.0"
    assert launch.minimal_version("min-granian-aiohttp", installed) == "granian 2.8.9, aiohttp 3.14.5, orjson 3.13.0"


def test_the_upstream_origin_rides_in_a_header():
    ups = targets.Upstreams(static_port=1001, sse_port=1002)
    target = targets.minimal_hop("min-x", 2000, ups, targets.Shapes())
    assert target.role == "minimal"
    assert target.endpoints["static"].headers["x-bench-upstream"] == "http://127.0.0.1:1001"
    assert target.endpoints["hold"].headers["x-bench-upstream"] == "http://127.0.0.1:1002"
    assert target.endpoints["static"].url == "http://127.0.0.1:2000/v1/chat/completions"


def _results(ours_rps, ours_p50, hop_rps, hop_p50) -> dict:
    return {"hops": {"sluicegate": {"status": "ok", "role": "gateway"},
                     gap.REFERENCE: {"status": "ok", "role": "minimal", "version": "v"},
                     "nginx": {"status": "ok", "role": "floor"}},
            "scenarios": {"throughput": {"sluicegate": {"rps": ours_rps}, gap.REFERENCE: {"rps": hop_rps}},
                          "latency_c1": {"sluicegate": {"added_p50_us": ours_p50},
                                         gap.REFERENCE: {"added_p50_us": hop_p50}}}}


def test_floor_gap_ratios_and_the_issue_14_bars():
    results = _results(ours_rps=6000.0, ours_p50=390.0, hop_rps=10000.0, hop_p50=300.0)
    row = gap.floor_gap(results)[gap.REFERENCE]
    assert (row["rps_ratio"], row["added_p50_ratio"]) == (0.6, 1.3)
    assert list(gap.floor_gap(results)) == [gap.REFERENCE]  # nginx is a floor, not a minimal hop
    verdicts = {b["key"]: b["verdict"] for b in bars.judge(results)}
    assert verdicts["rps_vs_floor"] == "pass" and verdicts["added_p50_vs_floor"] == "pass"
    worse = {b["key"]: b["verdict"] for b in bars.judge(_results(5999.0, 391.0, 10000.0, 300.0))}
    assert worse["rps_vs_floor"] == "miss" and worse["added_p50_vs_floor"] == "miss"


def test_no_minimal_hop_means_not_applicable():
    results = _results(6000.0, 390.0, 10000.0, 300.0)
    results["hops"][gap.REFERENCE] = {"status": "missing", "reason": "install failed"}
    verdicts = {b["key"]: b["verdict"] for b in bars.judge(results)}
    assert verdicts["rps_vs_floor"] == verdicts["added_p50_vs_floor"] == "n/a"


def test_the_asgi_row_runs_granian_in_asgi_mode():
    argv = launch.minimal_argv("min-granian-asgi-pyreqwest", "py", 9000)
    assert argv[argv.index("--interface") + 1] == "asgi"
    assert argv[-1] == "bench.floor.granian_asgi_pyreqwest:app"
    assert launch.minimal_argv("min-granian-aiohttp", "py", 9000)[4] == "rsgi"
