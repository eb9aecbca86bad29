"""Non-streaming scenarios, driven by wrk: added latency at c=1, max req/s at c=50, --workers scaling,
and the 3-target fallback config. Every hop is measured once per round, rounds interleaved."""

from __future__ import annotations

from bench import gateway_log, procs, wrk
from bench.context import Bench
from bench.stats import median, paired_added, ratio


def wrk_rounds(bench: Bench, names: list[str], kind: str, connections: int, duration_s: float,
               tag: str) -> dict[str, list[dict]]:
    """{hop: [round result or {'error': …}]}, each round visiting every hop once, order rotated."""
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for index in range(bench.plan.rounds):
        for name in bench.order(names, index):
            rounds[name].append(_one_wrk(bench, name, kind, connections, duration_s, tag))
    return rounds


def _one_wrk(bench: Bench, name: str, kind: str, connections: int, duration_s: float, tag: str) -> dict:
    dead = bench.alive(name)
    if dead:
        return {"error": dead}
    hop = bench.hops[name]
    # The hop's own processes only (not wrk, not the shared upstream): what a request costs it, whatever the
    # threads or processes it spreads the work over.
    leader = hop.child.pid if hop.child is not None else None
    cpu_before = procs.cpu_seconds(leader) if leader is not None else 0.0
    try:
        result = wrk.run(hop.target.endpoints[kind], connections, duration_s, bench.plan.threads,
                         bench.work / "wrk" / tag / name)
    except (RuntimeError, OSError) as exc:
        return {"error": str(exc)[:500]}
    measured = result.as_dict()
    if leader is not None and result.requests:
        measured["cpu_us"] = (procs.cpu_seconds(leader) - cpu_before) * 1e6 / result.requests
    return measured


def warm_up_one(bench: Bench, name: str) -> None:
    """Unmeasured load: JIT compilers, connection pools and caches start cold."""
    if bench.plan.warmup_s > 0:
        _one_wrk(bench, name, "static", bench.plan.throughput_c, bench.plan.warmup_s, "warmup")


def warm_up(bench: Bench) -> None:
    for name in bench.names():
        warm_up_one(bench, name)


def _summary(rounds: list[dict], keys: tuple[str, ...]) -> dict:
    good = [r for r in rounds if "error" not in r]
    out = {key: median([r.get(key) for r in good]) for key in keys}
    out["errors"] = sum(r.get("errors", 0) for r in good)
    out["requests"] = sum(r.get("requests", 0) for r in good)
    failed = [r["error"] for r in rounds if "error" in r]
    if failed:
        out["failed_rounds"] = failed
    out["rounds"] = rounds
    return out


def latency_c1(bench: Bench) -> dict:
    rounds = wrk_rounds(bench, bench.names(), "static", 1, bench.plan.latency_s, "latency_c1")
    result = {}
    for name, hop_rounds in rounds.items():
        summary = _summary(hop_rounds, ("p50_us", "p90_us", "p99_us", "p999_us", "mean_us", "cpu_us"))
        for key in ("p50_us", "p99_us"):
            summary[f"added_{key}"] = paired_added(hop_rounds, rounds["direct"], key)
        result[name] = summary
    return result


def throughput(bench: Bench) -> dict:
    c = bench.plan.throughput_c
    rounds = wrk_rounds(bench, bench.names(), "static", c, bench.plan.throughput_s, f"throughput_c{c}")
    result = {name: _summary(hop_rounds, ("rps", "p50_us", "p99_us", "cpu_us")) for name, hop_rounds in rounds.items()}
    if "sluicegate" in result and not bench.alive("sluicegate"):  # did its request log keep up (since its start)?
        result["sluicegate"]["log"] = gateway_log.counters(bench.hops["sluicegate"].target.endpoints["static"])
    return result


def scaling(bench: Bench, one: str, many: str) -> dict:
    """One worker against N workers of the same gateway, same load, interleaved."""
    c = bench.plan.workers_c
    rounds = wrk_rounds(bench, [one, many], "static", c, bench.plan.throughput_s, f"workers_c{c}")
    result = {name: _summary(hop_rounds, ("rps", "p50_us", "p99_us")) for name, hop_rounds in rounds.items()}
    result["speedup"] = ratio(result[many]["rps"], result[one]["rps"])
    result["connections"] = c
    result["workers"] = bench.plan.workers
    return result


def variant(bench: Bench, names: list[str], kind: str) -> dict:
    """A request variant (`fallback3`, `catalog`) at c=1 and c=50 on the hops that support it."""
    lat = wrk_rounds(bench, names, kind, 1, bench.plan.latency_s, f"{kind}_c1")
    c = bench.plan.throughput_c
    tput = wrk_rounds(bench, names, kind, c, bench.plan.throughput_s, f"{kind}_c{c}")
    return {name: {"c1": _summary(lat[name], ("p50_us", "p99_us")),
                   f"c{c}": _summary(tput[name], ("rps",))} for name in names}
