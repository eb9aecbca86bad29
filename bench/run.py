"""One benchmark run: bring the hops up, measure every scenario, write the result file.

Order of business: upstreams → hops (a hop that cannot be installed or started is recorded as
missing, with the reason) → warm-up → scenarios → bars. Every process is stopped on the way out,
whatever happened (see procs.Supervisor).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import bars, gap, install, launch, machine, scen_http, scen_stream, steps, targets
from bench.context import Bench
from bench.launch import NotReady, Running
from bench.plan import Plan
from bench.procs import Supervisor, install_termination_handlers

SCHEMA = 1
MB = 2**20


def require_tools() -> None:
    found = {"wrk": shutil.which("wrk"), "nginx": shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise SystemExit(f"bench: missing {', '.join(missing)}; run `bash bench/ensure_tools.sh` "
                         "(apt-get install -y wrk nginx) or `make bench`, which does it")


def _try_start(bench: Bench, name: str, start: Callable[[], Running]) -> None:
    print(f"bench: starting {name} …", file=sys.stderr, flush=True)
    try:
        bench.hops[name] = start()
    except (NotReady, OSError) as exc:
        bench.missing[name] = f"did not start: {exc}"[:2000]
        print(f"bench: {name} MISSING: {bench.missing[name][:300]}", file=sys.stderr)


def _start_peer(bench: Bench, cache: Path, name: str) -> None:
    print(f"bench: installing {name} (cached under {cache}) …", file=sys.stderr, flush=True)
    got = install.portkey(cache) if name == "portkey" else install.litellm(cache)
    if not got.ok:
        bench.missing[name] = f"install failed: {got.reason}"
        print(f"bench: {name} MISSING: {got.reason}", file=sys.stderr)
        return
    s = bench.plan.settle_s
    if name == "portkey":
        node = os.environ.get("BENCH_NODE", "node")  # which Node runs Portkey (default: the machine's)
        _try_start(bench, name, lambda: launch.start_portkey(bench.sup, got, bench.ups, bench.shapes, s, node))
    else:
        _try_start(bench, name, lambda: launch.start_litellm(bench.sup, got, bench.work, bench.ups, bench.shapes, s))


def _start_minimal(bench: Bench, cache: Path) -> None:
    """The minimal Python hops (the floor of a Python hop), all from one pinned venv."""
    print(f"bench: installing the minimal hops' packages (cached under {cache}) …", file=sys.stderr, flush=True)
    got = install.floor(cache)
    for name in bench.plan.minimal:
        if not got.ok:
            bench.missing[name] = f"install failed: {got.reason}"
            continue
        _try_start(bench, name, lambda name=name: launch.start_minimal(bench.sup, got, name, bench.ups,
                                                                       bench.shapes, bench.plan.settle_s))


def start_hops(bench: Bench, cache: Path) -> None:
    plan, s = bench.plan, bench.plan.settle_s
    bench.hops["direct"] = Running(targets.direct(bench.ups, bench.shapes), None, None, None, "")
    if plan.floor:
        _try_start(bench, "nginx", lambda: launch.start_nginx_floor(bench.sup, bench.work, bench.ups, bench.shapes, s))
    if plan.minimal:
        _start_minimal(bench, cache)
    _try_start(bench, "sluicegate", lambda: launch.start_sluicegate(
        bench.sup, bench.work, bench.ups, bench.shapes, bench.sluicegate_cmd, 1, "sluicegate", s,
        bench.sluicegate_version))
    if plan.peers:
        for peer in ("portkey", "litellm"):
            _start_peer(bench, cache, peer)


def _step(results: dict, key: str, fn: Callable[[], dict]) -> None:
    """Run one scenario; a failure is recorded in its place and the run goes on."""
    print(f"bench: scenario {key} …", file=sys.stderr, flush=True)
    began = time.perf_counter()
    try:
        results[key] = fn()
    except Exception as exc:
        results[key] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    results[key]["_seconds"] = round(time.perf_counter() - began, 1)


def measure(bench: Bench) -> dict:
    plan, out = bench.plan, {}
    scen_http.warm_up(bench)
    _step(out, "latency_c1", lambda: scen_http.latency_c1(bench))
    _step(out, "throughput", lambda: scen_http.throughput(bench))
    _step(out, "stream_c1", lambda: scen_stream.streaming(bench, plan.stream_c1, 1, plan.ttft_c1))
    _step(out, "stream_many", lambda: scen_stream.streaming(bench, plan.stream_many, plan.stream_many))
    _step(out, "memory", lambda: scen_stream.memory(bench))
    _step(out, "scaling", lambda: steps.scaling(bench))
    _step(out, "fallback", lambda: steps.fallback(bench))
    _step(out, "catalog_slug", lambda: steps.catalog_slug(bench))
    _step(out, "cache_hit", lambda: steps.cache_hit(bench))
    _step(out, "keys_on", lambda: steps.keys_on(bench))
    _step(out, "limits_on", lambda: steps.limits_on(bench))
    _step(out, "replicas", lambda: steps.replicas(bench))
    return out


def hop_table(bench: Bench, versions: dict) -> dict:
    table = {}
    for name, running in bench.hops.items():
        table[name] = {"status": "ok", "role": running.target.role, "version": running.version,
                       "startup_s": running.startup_s,
                       "idle_rss_mb": running.idle_rss / MB if running.idle_rss else None}
    table["direct"]["version"] = f"{versions.get('nginx', 'nginx')} static"
    if "nginx" in table:
        table["nginx"]["version"] = versions.get("nginx", "")
    for name, reason in bench.missing.items():
        table[name] = {"status": "missing", "reason": reason}
    return table


def execute(plan: Plan, sluicegate_cmd: list[str], cache: Path, command: str) -> dict:
    """The whole run; returns the result document (bars judged). Leaves no process behind."""
    require_tools()
    install_termination_handlers()
    work = Path(tempfile.mkdtemp(prefix="sluicegate-bench-"))
    versions = machine.tool_versions(os.environ.get("BENCH_NODE", "node"))
    results = {"schema": SCHEMA, "mode": plan.mode, "command": command,
               "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": machine.machine(), "versions": versions, "plan": asdict(plan),
               "work_dir": str(work)}
    shapes = targets.Shapes(stream=plan.stream_model, hold=plan.hold_model)
    with Supervisor(work / "logs") as sup:
        ups = launch.start_upstreams(sup, work, sys.executable)
        bench = Bench(plan, work, sup, ups, shapes, sluicegate_cmd, machine.sluicegate_version(sluicegate_cmd))
        start_hops(bench, cache)
        results["scenarios"] = measure(bench)
        results["hops"] = hop_table(bench, versions)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["floor_gap"] = gap.floor_gap(results)
    results["bars"] = bars.judge(results)
    _tidy(work, results)
    return results


def _tidy(work: Path, results: dict) -> None:
    """Remove the run's scratch dir (configs, logs, sluicegate's data) unless something went wrong,
    in which case its logs are what explains it, so it stays and the result file points to it."""
    troubled = bench_troubles(results)
    if troubled:
        results["work_dir_kept_because"] = troubled
        print(f"bench: kept {work} for its logs ({'; '.join(troubled)[:200]})", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
        results["work_dir"] = None


def bench_troubles(results: dict) -> list[str]:
    troubles = [f"{name} missing" for name, hop in results.get("hops", {}).items() if hop.get("status") != "ok"]
    troubles += [f"scenario {key} failed" for key, value in results.get("scenarios", {}).items()
                 if isinstance(value, dict) and "error" in value]
    return troubles


def write_result(results: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("+0000", "Z")
    path = out_dir / f"{stamp}-{results['mode']}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (out_dir / f"latest-{results['mode']}.json").write_text(text)
    return path
