"""The pipeline's mechanics: the per-request state and the chain of steps, linked once at startup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from ..access.model import Principal
from ..config.model import Node
from ..types import CACHE_DISABLED, AttemptRecord, Call, Outcome

DEFAULT_CACHE_SCOPE = "default"


# Its own __init__: a dataclass's generated one stays interpreted when compiled (types.py, RequestContext).
@dataclass(slots=True, init=False)
class RequestState:
    """What the steps learn about one request, in order; the handler and the request log read it after."""

    call: Call
    root: Node | None = None  # the request's config tree, once the select step chose it
    attempts: list[AttemptRecord] = field(default_factory=list)  # every upstream attempt, for the log
    cache_status: str = CACHE_DISABLED  # x-portkey-cache-status
    # Whose cache entries this request may read and write: admission sets it (the API key's or workspace's
    # scope); until a key system exists every request shares DEFAULT_CACHE_SCOPE. The cache key also holds
    # the upstream credential and the config tree, so two callers with different credentials never share.
    cache_scope: str = DEFAULT_CACHE_SCOPE
    principal: Principal | None = None  # the admitted API key (None: /v1 is open and none was given)

    def __init__(self, call: Call, root: Node | None = None, attempts: list[AttemptRecord] | None = None,
                 cache_status: str = CACHE_DISABLED, cache_scope: str = DEFAULT_CACHE_SCOPE,
                 principal: Principal | None = None) -> None:
        self.call = call
        self.root = root
        self.attempts = [] if attempts is None else attempts
        self.cache_status = cache_status
        self.cache_scope = cache_scope
        self.principal = principal


Next = Callable[[RequestState], Awaitable[Outcome]]


class Step(Protocol):
    async def __call__(self, state: RequestState, call_next: Next) -> Outcome: ...


class Pipeline:
    """Steps in order; the last one must answer without calling on (the dispatch step does)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        self.steps = tuple(steps)
        self.run: Next = _chain(self.steps)  # awaited with the request's state: the first step's coroutine


def _chain(steps: Sequence[Step]) -> Next:
    """Each step bound to the rest of the chain as its ``call_next``: calling a link creates the step's own
    coroutine and no wrapper around it, so a request's awaits nest one frame per step, not two."""

    async def end(state: RequestState) -> Outcome:
        raise RuntimeError("the pipeline's last step called on: it must answer")

    handler: Next = end
    for step in reversed(steps):
        handler = partial(step, call_next=handler)
    return handler
