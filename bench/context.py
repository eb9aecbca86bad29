"""The state one benchmark run shares between its steps: plan, work dir, the hops that are up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.launch import Running
from bench.plan import Plan
from bench.procs import Supervisor
from bench.targets import Shapes, Upstreams

T = TypeVar("T")


@dataclass
class Bench:
    plan: Plan
    work: Path
    sup: Supervisor
    ups: Upstreams
    shapes: Shapes
    sluicegate_cmd: list[str]
    sluicegate_version: str
    hops: dict[str, Running] = field(default_factory=dict)  # insertion order = report order
    missing: dict[str, str] = field(default_factory=dict)   # hop name -> why it is not measured

    def names(self, *, include_direct: bool = True) -> list[str]:
        return [n for n in self.hops if include_direct or n != "direct"]

    def order(self, names: list[str], round_index: int) -> list[str]:
        """A B C, then B C A, …: interleaved, and no hop always goes first after a quiet spell."""
        if not names:
            return []
        shift = round_index % len(names)
        return names[shift:] + names[:shift]

    def alive(self, name: str) -> str:
        """'' if the hop's process is still up, else why not (a hop can die under load)."""
        child = self.hops[name].child
        if child is None or child.alive():
            return ""
        return f"process exited ({child.popen.returncode}): {child.log_tail(5)}"


def run_async(coro: Awaitable[T]) -> T:
    """One event loop per batch, uvloop when the bench's environment has it (as the gateways do)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
