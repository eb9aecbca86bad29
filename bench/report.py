"""The Markdown tables of one result document. Pure: results dict in, Markdown text out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench import gap

SUBJECT = "sluicegate"
VERDICT = {"pass": "✅ pass", "miss": "❌ miss", "n/a": "— n/a"}


def fmt(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{suffix}"
    return str(value)


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _scenario(results: dict, key: str) -> dict:
    node = results.get("scenarios", {}).get(key, {})
    return node if isinstance(node, dict) else {}


def _hop_names(results: dict) -> list[str]:
    return [name for name, hop in results.get("hops", {}).items() if hop.get("status") == "ok"]


def hops_table(results: dict) -> str:
    rows = []
    for name, hop in results.get("hops", {}).items():
        if hop.get("status") != "ok":
            rows.append([name, "—", f"**missing**: {hop.get('reason', '')[:160]}", "—", "—"])
            continue
        rows.append([name, hop.get("version") or "—", "ok", fmt(hop.get("startup_s"), 2, " s"),
                     fmt(hop.get("idle_rss_mb"), 0, " MB")])
    return table(["hop", "version", "status", "startup → first 200", "idle RSS"], rows)


# On a machine whose cores are all busy during the throughput rounds (wrk, the upstream and the hop share
# them), req/s follows what a request costs in CPU as much as how the hop spreads it over threads.
_CPU_NOTE = ("\n\nCPU µs/req: the hop's own processes, every thread (user + system, from /proc), over its c=50 "
             "(or c=1) rounds, per request answered (median of the rounds); wrk and the upstream are not counted. "
             "At c=1 the hop sleeps between requests and each one starts on cold caches: how much more that "
             "costs than at c=50 depends on the machine as much as on the hop.")


def http_table(results: dict) -> str:
    lat, tput = _scenario(results, "latency_c1"), _scenario(results, "throughput")
    direct_rps = tput.get("direct", {}).get("rps")
    rows = []
    for name in _hop_names(results):
        lt, tp = lat.get(name, {}), tput.get(name, {})
        share = tp.get("rps") / direct_rps if tp.get("rps") and direct_rps else None
        rows.append([name, fmt(tp.get("rps")), fmt(share, 3), fmt(tp.get("cpu_us")), fmt(lt.get("cpu_us")),
                     fmt(lt.get("p50_us")), fmt(lt.get("p99_us")), fmt(lt.get("added_p50_us")),
                     fmt(lt.get("added_p99_us")), fmt((lt.get("errors") or 0) + (tp.get("errors") or 0))])
    header = ["hop", "req/s (c=50)", "÷ direct", "CPU µs/req (c=50)", "CPU µs/req (c=1)", "p50 µs (c=1)",
              "p99 µs (c=1)", "added p50 µs", "added p99 µs", "errors"]
    return table(header, rows) + _CPU_NOTE + _log_note(tput.get(SUBJECT, {}).get("log"))


def _log_note(log: dict | None) -> str:
    """sluicegate's request log after the throughput rounds: it logs every request it serves, or says so."""
    if not log:
        return ""
    return (f"\n\nsluicegate's request log after these rounds (since its start): {fmt(log.get('written'))} "
            f"records written, {fmt(log.get('dropped'))} dropped, {fmt(log.get('paced'))} requests paced "
            f"(waited for the log to catch up before they started), {fmt(log.get('queue_depth'))} still queued.")


def ratio_table(results: dict) -> str:
    """sluicegate against every other hop: how many times its req/s, how many times its latency."""
    lat, tput = _scenario(results, "latency_c1"), _scenario(results, "throughput")
    ours_rps, ours_lat = tput.get(SUBJECT, {}).get("rps"), lat.get(SUBJECT, {})
    if ours_rps is None:
        return "_sluicegate has no figures in this run._"
    rows = []
    for name in _hop_names(results):
        if name == SUBJECT:
            continue
        theirs_rps, theirs_lat = tput.get(name, {}).get("rps"), lat.get(name, {})
        rows.append([name, fmt(ours_rps / theirs_rps if theirs_rps else None, 2, "×"),
                     fmt(_div(theirs_lat.get("p50_us"), ours_lat.get("p50_us")), 2, "×"),
                     fmt(_div(theirs_lat.get("p99_us"), ours_lat.get("p99_us")), 2, "×")])
    return table(["other hop", "sluicegate req/s ÷ hop's", "hop's p50 ÷ sluicegate's",
                  "hop's p99 ÷ sluicegate's"], rows)


def floor_table(results: dict) -> str:
    """The minimal hops (the floor of a Python hop) and sluicegate's distance to each."""
    rows = [[name, row["version"] or "—", fmt(row["rps"]), fmt(row["added_p50_us"]),
             fmt(row["rps_ratio"], 2, "×"), fmt(row["added_p50_ratio"], 2, "×")]
            for name, row in gap.floor_gap(results).items()]
    if not rows:
        return "_no minimal hop ran in this run._"
    return table(["minimal hop", "packages", "req/s (c=50)", "added p50 µs (c=1)", "sluicegate req/s ÷ hop's",
                  "sluicegate added p50 ÷ hop's"], rows)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def stream_table(results: dict) -> str:
    c1, many = _scenario(results, "stream_c1"), _scenario(results, "stream_many")
    rows = []
    for name in _hop_names(results):
        row = [name]
        for scen in (c1, many):
            s = scen.get(name, {})
            row += [f"{fmt(s.get('added_ttft_p50_ms'), 2)} / {fmt(s.get('added_ttft_p99_ms'), 2)}",
                    f"{fmt(s.get('added_chunk_delay_p50_ms'), 2)} / {fmt(s.get('added_chunk_delay_p99_ms'), 2)}",
                    f"{fmt(s.get('held_back'))} / {fmt(s.get('chunks'))} of {fmt(s.get('expected_chunks'))}"
                    + (f", {s['failed_streams']} failed" if s.get("failed_streams") else "")]
        rows.append(row)
    n = many.get("_shape", {}).get("concurrency", "N")
    notes = [f"**{label}: baseline saturated** — {scen['_baseline']['direct_held_back']} chunks were late "
             "even without a hop, so this machine could not drive the scenario; its figures are not "
             "trustworthy." for label, scen in (("1 stream", c1), (f"{n} streams", many))
             if scen.get("_baseline", {}).get("saturated")]
    header = ["hop", "1 stream: added TTFT p50 / p99 ms", "added chunk delay p50 / p99 ms",
              "held back / received", f"{n} streams: added TTFT p50 / p99 ms", "added chunk delay p50 / p99 ms",
              "held back / received"]
    return table(header, rows) + "".join(f"\n\n{note}" for note in notes)


def ttft_start_table(results: dict) -> str:
    """One stream's time to first token split by how the stream started (scen_stream.stream_rounds)."""
    c1 = _scenario(results, "stream_c1")
    rows = [[name, fmt(s.get("added_ttft_p99_ms"), 2),
             f"{fmt(s.get('added_ttft_back_to_back_p50_ms'), 2)} / {fmt(s.get('added_ttft_back_to_back_p99_ms'), 2)}",
             f"{fmt(s.get('added_ttft_cold_p50_ms'), 2)} / {fmt(s.get('added_ttft_cold_p90_ms'), 2)}"]
            for name in _hop_names(results) for s in [c1.get(name, {})]]
    counts = c1.get("direct", {})
    header = ["hop", f"all {fmt(counts.get('streams'))}: added TTFT p99 ms (the bar's)",
              f"back to back ({fmt(counts.get('back_to_back_streams'))}): added p50 / p99 ms",
              f"cold ({fmt(counts.get('cold_streams'))}): added p50 / p90 ms"]
    return (table(header, rows) + "\n\nBack to back: a two-chunk stream right after another on the same "
            "connection. Cold: a paced stream (after one whose chunks came 20 ms apart, gaps in which every "
            "process sleeps) or a batch's first stream (a new connection). Cold starts are few, but in a full run "
            "(33 of 630) enough to set the pooled p99, about the sixth slowest.")


def memory_table(results: dict) -> str:
    mem = _scenario(results, "memory")
    n = mem.get("_shape", {}).get("streams", "N")
    rows = []
    for name in _hop_names(results):
        if name == "direct":
            continue
        m = mem.get(name, {})
        rows.append([name, fmt(m.get("idle_rss_mb"), 0, " MB"), fmt(m.get("streams_rss_mb"), 0, " MB"),
                     fmt(m.get("max_open")), fmt(m.get("failed_streams"))])
    return table(["hop", "idle RSS", f"peak RSS, {n} streams", "max open at once", "failed streams"], rows)


def scaling_text(results: dict) -> str:
    sc = _scenario(results, "scaling")
    if "speedup" not in sc:
        return f"_not measured: {sc.get('skipped') or sc.get('unavailable') or sc.get('error', '?')}_"
    many = next((k for k in sc if k.startswith(f"{SUBJECT}-w")), "?")
    return table(["hop", f"req/s (c={sc.get('connections')})", "p99 µs"],
                 [[SUBJECT, fmt(sc[SUBJECT].get("rps")), fmt(sc[SUBJECT].get("p99_us"))],
                  [many, fmt(sc[many].get("rps")), fmt(sc[many].get("p99_us"))]]) + \
        f"\n\nspeed-up with {sc.get('workers')} workers: **{fmt(sc.get('speedup'), 2, '×')}**"


def variant_text(results: dict, key: str) -> str:
    fb = _scenario(results, key)
    for reason in ("skipped", "pending", "unavailable", "error"):
        if reason in fb:
            return f"_not measured ({reason}): {fb[reason]}_"
    rows = []
    for name, row in fb.items():
        if name.startswith("_"):
            continue
        if "unavailable" in row:
            rows.append([name, f"unavailable: {row['unavailable'][:120]}", "—", "—"])
            continue
        c1 = row.get("c1", {})
        tput = next((v for k, v in row.items() if k.startswith("c") and k != "c1"), {})
        rows.append([name, fmt(tput.get("rps")), fmt(c1.get("p50_us")), fmt(c1.get("p99_us"))])
    return table(["hop", "req/s (c=50)", "p50 µs (c=1)", "p99 µs (c=1)"], rows)


def _keys_note(results: dict) -> str:
    share = _scenario(results, "keys_on").get("_throughput_ratio")
    if share is None:
        return ""
    verdict = "within" if share >= 0.95 else "outside"
    return f"\n\nKeys on keep {share:.1%} of the keys-off throughput ({verdict} the 5 % budget)."


def _limits_note(results: dict) -> str:
    added = _scenario(results, "limits_on").get("_p99_added_us")
    if added is None:
        return ""
    verdict = "within" if added <= 1000 else "outside"
    return f"\n\nLimits on add {added:.0f} µs to the p99 at c=1 ({verdict} the 1 ms target)."


def _replicas_note(results: dict) -> str:
    sc = _scenario(results, "replicas")
    share = sc.get("_throughput_ratio")
    if share is None:
        return ""
    return (f"\n\n{sc.get('_replicas')} replicas behind nginx reach {share:.0%} of the single process's req/s "
            f"on this machine (startup to first 200: {fmt(sc.get('_startup_s'), 1, ' s')}; idle RSS of nginx "
            f"and every replica: {fmt(sc.get('_idle_rss_mb'), 0, ' MB')}).")


def bars_table(results: dict) -> str:
    rows = [[bar["text"], fmt(bar["value"], 2, f" {bar['unit']}"), VERDICT[bar["verdict"]], bar.get("note") or ""]
            for bar in results.get("bars", [])]
    return table(["bar (issues 7, 14)", "sluicegate", "verdict", "note"], rows)


def render(results: dict) -> str:
    shape = _scenario(results, "stream_c1").get("_shape", {})
    parts = [
        "#### Bars\n\n" + bars_table(results),
        "#### Hops\n\n" + hops_table(results),
        "#### Non-streaming (static upstream)\n\n" + http_table(results),
        "#### sluicegate relative to each hop\n\n" + ratio_table(results),
        "#### How close to the floor (minimal Python hops, bench/floor/)\n\n" + floor_table(results),
        f"#### Streaming ({shape.get('chunks')} chunks, {shape.get('interval_ms')} ms apart; "
        "“added” = hop − direct)\n\n" + stream_table(results),
        "#### One stream's time to first token, by how the stream started\n\n" + ttft_start_table(results),
        "#### Memory\n\n" + memory_table(results),
        "#### --workers scaling\n\n" + scaling_text(results),
        "#### 3-target fallback config (503, 503, then the static upstream)\n\n" + variant_text(results, "fallback"),
        "#### Catalog @slug provider\n\n" + variant_text(results, "catalog_slug"),
        "#### Response cache hit (in memory) beside direct\n\n" + variant_text(results, "cache_hit"),
        "#### Keys on (every request carries a verified gateway API key) vs keys off\n\n"
        + variant_text(results, "keys_on") + _keys_note(results),
        "#### Limits on (a key with rate limits and a token budget, counted in the local Redis) vs a key without\n\n"
        + variant_text(results, "limits_on") + _limits_note(results),
        "#### Replicas (`make cluster`: sluicegates on PostgreSQL and Redis behind nginx) vs one process on SQLite\n\n"
        + variant_text(results, "replicas") + _replicas_note(results),
    ]
    return "\n\n".join(parts) + "\n"
