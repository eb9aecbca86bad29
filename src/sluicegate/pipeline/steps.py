"""The steps of the default pipeline. Each is small on purpose: it is where a feature plugs in.

  AdmitAll      admission when no access control is wired (in-process tests): lets every request in
  Admit         admission by gateway API key (admit.py): the key, its scope and defaults, its config
  SelectConfig  the request's config tree (ConfigSelector)
  Authorize     every target of that tree is one the key may use (admit.py)
  CacheStep     answer from a response cache (cache/), or store the answer in it
  DispatchStep  the config tree walk with retries and fallbacks (dispatch.py): always answers
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config.model import CachePolicy
from ..dispatch import Dispatcher
from ..types import CACHE_DISABLED, CACHE_REFRESH, Outcome
from .core import Next, RequestState, Step
from .select import ConfigSelector


class AdmitAll:
    """Admission: where a request's key, permissions and limits are checked before any work. A refusal is
    a ``GatewayError`` raised here (401/403/429), answered and logged like any other."""

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        return await call_next(state)


class SelectConfig:
    def __init__(self, selector: ConfigSelector) -> None:
        self._selector = selector

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        state.root = self._selector.root_for(state.call)
        return await call_next(state)


@dataclass(frozen=True, slots=True)
class CacheHit:
    outcome: Outcome
    status: str  # CACHE_HIT, or CACHE_SEMANTIC_HIT for a neighbour's answer


class ResponseCache(Protocol):
    """A response cache (cache/): keyed by what it chooses from the request, bounded by the policy.

    ``lookup`` answers None for a miss; ``miss_status`` is what a miss is called under the policy (MISS or
    SEMANTIC MISS); ``store`` keeps a successful answer (a stream once it ended cleanly) off the request path.
    """

    def covers(self, state: RequestState) -> bool:
        """Can this request be cached at all (its endpoint, a JSON body)? Else it is DISABLED, not a MISS."""
        ...

    async def lookup(self, state: RequestState, policy: CachePolicy) -> CacheHit | None: ...

    def miss_status(self, policy: CachePolicy) -> str: ...

    def store(self, state: RequestState, policy: CachePolicy, outcome: Outcome) -> None: ...


class CacheStep:
    """The config's ``cache`` block (on its root) switches caching on for a request, given a cache.

    ``x-portkey-cache-force-refresh`` skips the lookup (REFRESH) and the fresh answer replaces the stored
    one; ``x-portkey-debug: false`` (no logging) also means no caching, as on Portkey.
    """

    def __init__(self, cache: ResponseCache | None = None) -> None:
        self._cache = cache

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        policy = state.root.cache if state.root is not None else None
        ctx = state.call.ctx
        if self._cache is None or policy is None or not ctx.log_bodies or not self._cache.covers(state):
            state.cache_status = CACHE_DISABLED
            return await call_next(state)
        if ctx.cache_force_refresh:
            state.cache_status = CACHE_REFRESH
        else:
            hit = await self._cache.lookup(state, policy)
            if hit is not None:
                state.cache_status = hit.status
                return hit.outcome
            state.cache_status = self._cache.miss_status(policy)
        outcome = await call_next(state)
        self._cache.store(state, policy, outcome)
        return outcome


class DispatchStep:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        assert state.root is not None, "SelectConfig runs before DispatchStep"
        outcome, state.attempts = await self._dispatcher.run(state.call, state.root)
        return outcome


def default_steps(selector: ConfigSelector, dispatcher: Dispatcher, cache: ResponseCache | None = None, *,
                  admit: Step | None = None, authorize: Step | None = None,
                  limit: Step | None = None) -> list[Step]:
    """``admit``/``authorize``: the access-control steps (admit.py); without them every request is let in.
    ``limit``: usage limits (limit.py), after the key and its targets are known to be allowed."""
    first: list[Step] = [admit or AdmitAll(), SelectConfig(selector)]
    if authorize is not None:
        first.append(authorize)
    if limit is not None:
        first.append(limit)
    return [*first, CacheStep(cache), DispatchStep(dispatcher)]
