"""One PNG summarising a run: req/s, added latency, streaming TTFT, memory, per hop.

matplotlib lives in the bench's own venv (bench/.cache/venv), never the project's; without it the
run still writes its JSON and Markdown and says the chart was skipped.
"""

from __future__ import annotations

from pathlib import Path

COLOURS = {"direct": "#9e9e9e", "nginx": "#607d8b", "sluicegate": "#1565c0", "portkey": "#ef6c00",
           "litellm": "#6a1b9a"}


def _hops(results: dict) -> list[str]:
    return [n for n, h in results.get("hops", {}).items() if h.get("status") == "ok"]


def _bars(ax, names: list[str], values: list[float | None], title: str, log: bool = False,
          limit: float | None = None) -> None:
    # A log axis cannot show 0 or a negative "added" (noise); those hops are named under the panel.
    shown = [(n, v) for n, v in zip(names, values, strict=True) if v is not None and (v > 0 or not log)]
    left_out = [n for n, v in zip(names, values, strict=True) if v is not None and log and v <= 0]
    if left_out:
        ax.set_xlabel(f"not shown (≤ 0): {', '.join(left_out)}", fontsize=7)
    if not shown:
        ax.set_title(title + " (no data)")
        return
    labels, heights = zip(*shown, strict=True)
    bars = ax.bar(labels, heights, color=[COLOURS.get(n, "#455a64") for n in labels])
    ax.bar_label(bars, labels=[f"{h:,.0f}" if abs(h) >= 10 else f"{h:.2f}" for h in heights], fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8, rotation=20)
    if log:
        ax.set_yscale("log")
    if limit is not None:  # sluicegate's bar from issue 7, for the eye
        ax.axhline(limit, color="#c62828", linestyle="--", linewidth=1)
        ax.annotate(f"bar {limit:g}", (0.01, limit), xycoords=("axes fraction", "data"), color="#c62828",
                    fontsize=7, va="bottom")


def draw(results: dict, path: Path) -> str:
    """Write the PNG; '' on success, else why it was skipped."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed in this environment"
    sc = results.get("scenarios", {})
    names = _hops(results)
    gateways = [n for n in names if n != "direct"]
    pick = lambda scen, key, ns: [sc.get(scen, {}).get(n, {}).get(key) for n in ns]  # noqa: E731
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    _bars(axes[0][0], names, pick("throughput", "rps", names), "req/s at c=50 (log scale)", log=True)
    _bars(axes[0][1], gateways, pick("latency_c1", "added_p99_us", gateways), "added latency p99 at c=1, µs (log)",
          log=True, limit=1000)
    _bars(axes[1][0], gateways, pick("stream_many", "added_ttft_p99_ms", gateways),
          "added TTFT p99, many streams, ms (log)", log=True, limit=1)
    streams = sc.get("memory", {}).get("_shape", {}).get("streams", "N")
    _bars(axes[1][1], gateways, pick("memory", "streams_rss_mb", gateways), f"peak RSS with {streams} streams open, MB",
          limit=300)
    kind = "" if results.get("mode") == "full" else " — DEVELOPMENT RUN, not the figures of record"
    fig.suptitle(f"sluicegate bench: {results.get('mode')} run, {results.get('started_at', '')[:10]}, "
                 f"{results.get('machine', {}).get('nproc')} cores{kind}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""
