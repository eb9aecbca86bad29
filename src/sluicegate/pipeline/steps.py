"""The steps of the default pipeline. Each is small on purpose: it is where a feature plugs in.

  AdmitAll      admission when no access control is wired (in-process tests): lets every request in
  Admit         admission by gateway API key (admit.py): the key, its scope and defaults, its config
  SelectConfig  the request's config tree (ConfigSelector)
  Authorize     every target of that tree is one the key may use (admit.py)
  CacheStep     answer from a response cache, or store the answer in it; no cache exists yet
  DispatchStep  the config tree walk with retries and fallbacks (dispatch.py): always answers
"""

from __future__ import annotations

from typing import Protocol

from ..config.model import CachePolicy
from ..dispatch import Dispatcher
from ..types import CACHE_DISABLED, CACHE_HIT, CACHE_MISS, Outcome
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


class ResponseCache(Protocol):
    """A response cache (none exists yet): keyed by what it chooses from the call, bounded by the policy."""

    async def lookup(self, state: RequestState, policy: CachePolicy) -> Outcome | None: ...

    async def store(self, state: RequestState, policy: CachePolicy, outcome: Outcome) -> None: ...


class CacheStep:
    """The config's ``cache`` block (on its root) switches caching on for a request, given a cache."""

    def __init__(self, cache: ResponseCache | None = None) -> None:
        self._cache = cache

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        policy = state.root.cache if state.root is not None else None
        if self._cache is None or policy is None:
            state.cache_status = CACHE_DISABLED
            return await call_next(state)
        hit = await self._cache.lookup(state, policy)
        if hit is not None:
            state.cache_status = CACHE_HIT
            return hit
        state.cache_status = CACHE_MISS
        outcome = await call_next(state)
        await self._cache.store(state, policy, outcome)
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
