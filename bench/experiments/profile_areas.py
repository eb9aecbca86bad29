"""EXPERIMENT helper: split a py-spy raw profile of one thread into the areas of the gateway's request path.

    python -m bench.experiments.profile_areas PROFILE.raw [THREAD] [LOOP_US_PER_REQUEST]

PROFILE.raw comes from ``py-spy record -p PID -r 200 -d 8 -f raw -o PROFILE.raw --threads``; THREAD picks the
stacks whose first frame names it (default ``MainThread``: the event loop in ``sluicegate serve`` and in a
granian worker). Each sample is given to the deepest frame of our own code on its stack, the way
docs/benchmarks.md splits the loop; a stack with none, or whose deepest is only the code that runs
aiohttp's server (``serve.py``, ``server/connections.py``), is the server edge. With the loop's CPU per
request (µs) each share is also given in µs.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

EDGE = "server edge"
AREAS = (  # (area, path fragment); the first that matches the deepest own frame wins
    (EDGE, "sluicegate/serve.py"),
    (EDGE, "sluicegate/cli/"),
    (EDGE, "sluicegate/__main__"),
    (EDGE, "sluicegate/server/connections.py"),
    ("request log (telemetry/)", "sluicegate/telemetry/"),
    ("upstream exchange (upstream/)", "sluicegate/upstream/"),
    ("the adapter (bench/experiments/)", "bench/experiments/"),
    ("streaming relay", "sluicegate/server/streaming"),
    ("route, middleware, request headers (server/)", "sluicegate/server/"),
    ("pipeline, dispatch, prepare, routing, access, config", "sluicegate/"),
)
FRAME = re.compile(r"^(.*) \((.*?):(\d+)\)$")


def area_of(frames: list[str]) -> tuple[str, str | None]:
    """(area, the deepest own function) for one stack, outermost frame first."""
    for frame in reversed(frames):
        match = FRAME.match(frame)
        if match is None:
            continue
        path = match.group(2)
        area = next((name for name, fragment in AREAS if fragment in path), None)
        if area is not None:
            return area, f"{match.group(1)} ({path.rsplit('/', 1)[-1]})"
    return EDGE, None


def split(lines: list[str], thread: str) -> tuple[int, Counter[str], Counter[str]]:
    areas: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        frames = stack.split(";")
        if thread not in frames[0]:
            continue
        samples = int(count)
        total += samples
        area, function = area_of(frames[1:])
        areas[area] += samples
        if function is not None:
            functions[function] += samples
    return total, areas, functions


def main() -> None:
    path = sys.argv[1]
    thread = sys.argv[2] if len(sys.argv) > 2 else "MainThread"
    loop_us = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    with open(path) as profile:
        total, areas, functions = split(profile.readlines(), thread)
    print(f"samples: {total}")
    for area, samples in areas.most_common():
        print(f"{100 * samples / total:5.1f} %  ~{loop_us * samples / total:4.0f} µs  {area}")
    print("deepest own functions:")
    for function, samples in functions.most_common(12):
        print(f"{100 * samples / total:5.1f} %  {function}")


if __name__ == "__main__":
    main()
