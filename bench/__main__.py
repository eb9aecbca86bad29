"""`python -m bench [--quick | --smoke] …` — run the benchmark from the repository root.

Prints the Markdown tables, writes bench/results/<time>-<mode>.json (and latest-<mode>.json), and
with --write-docs also docs/benchmarks.md and docs/benchmarks.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from bench import bars, chart, docs, report, run
from bench.plan import PLANS

REPO = Path(__file__).resolve().parent.parent


def default_sluicegate_cmd() -> list[str]:
    """$SLUICEGATE_CMD, else the repository's own venv, else whatever `sluicegate` is on PATH."""
    if os.environ.get("SLUICEGATE_CMD"):
        return shlex.split(os.environ["SLUICEGATE_CMD"])
    venv_python = REPO / ".venv" / "bin" / "python"
    if venv_python.exists():
        return [str(venv_python), "-m", "sluicegate"]
    return ["sluicegate"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="about a minute")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="seconds: direct + sluicegate only, no peers (for the smoke test)")
    parser.set_defaults(mode="full")
    parser.add_argument("--sluicegate-cmd", type=shlex.split, default=None,
                        help="how to run sluicegate (default: $SLUICEGATE_CMD or ./.venv/bin/python -m sluicegate)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "bench" / ".cache")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the figures and chart into docs/benchmarks.md and docs/benchmarks.png")
    parser.add_argument("--from-result", type=Path, default=None, metavar="JSON",
                        help="do not measure: render the tables (and docs) from an earlier result file")
    parser.add_argument("--development", action="store_true",
                        help="mark the docs figures as a development run (implied by any mode but full)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.from_result:
        results = json.loads(args.from_result.read_text())
        results["bars"] = bars.judge(results)  # judged again: the bars may have changed since
    else:
        command = os.environ.get("BENCH_COMMAND") or "python -m bench " + " ".join(sys.argv[1:])
        results = run.execute(PLANS[args.mode], args.sluicegate_cmd or default_sluicegate_cmd(), args.cache_dir,
                              command)
        path = run.write_result(results, args.out_dir)
        path.with_suffix(".md").write_text(report.render(results))
        print(f"bench: results in {path}", file=sys.stderr)
    print(report.render(results))
    if args.write_docs:
        png = REPO / "docs" / "benchmarks.png"
        why = chart.draw(results, png)
        if why:
            print(f"bench: chart skipped: {why}", file=sys.stderr)
        docs.write(REPO / "docs" / "benchmarks.md", results, None if why else png.name,
                   args.development or results.get("mode") != "full")
        print("bench: wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # every process was already stopped on the way out
        print("bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
