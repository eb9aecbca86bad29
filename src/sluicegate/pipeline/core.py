"""The pipeline's mechanics: the per-request state and the chain of steps, linked once at startup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..config.model import Node
from ..types import CACHE_DISABLED, AttemptRecord, Call, Outcome


@dataclass(slots=True)
class RequestState:
    """What the steps learn about one request, in order; the handler and the request log read it after."""

    call: Call
    root: Node | None = None  # the request's config tree, once the select step chose it
    attempts: list[AttemptRecord] = field(default_factory=list)  # every upstream attempt, for the log
    cache_status: str = CACHE_DISABLED  # x-portkey-cache-status


Next = Callable[[RequestState], Awaitable[Outcome]]


class Step(Protocol):
    async def __call__(self, state: RequestState, call_next: Next) -> Outcome: ...


class Pipeline:
    """Steps in order; the last one must answer without calling on (the dispatch step does)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        self.steps = tuple(steps)
        self._entry = _chain(self.steps)

    async def run(self, state: RequestState) -> Outcome:
        return await self._entry(state)


def _chain(steps: Sequence[Step]) -> Next:
    async def end(state: RequestState) -> Outcome:
        raise RuntimeError("the pipeline's last step called on: it must answer")

    handler: Next = end
    for step in reversed(steps):
        handler = _link(step, handler)
    return handler


def _link(step: Step, call_next: Next) -> Next:
    async def run(state: RequestState) -> Outcome:
        return await step(state, call_next)

    return run
