"""The request pipeline in-process: order, short-circuits, and where the cache and admission plug in."""

from __future__ import annotations

import pytest

from sluicegate.config import ConfigCache
from sluicegate.errors import Unauthorized
from sluicegate.pipeline import (
    AdmitAll,
    CacheHit,
    CacheStep,
    ConfigSelector,
    DispatchStep,
    Pipeline,
    RequestState,
    SelectConfig,
    default_steps,
)
from sluicegate.providers import registry
from sluicegate.types import CACHE_DISABLED, CACHE_HIT, CACHE_MISS, CACHE_REFRESH, Outcome
from tests.fakes.transport import FakeTransport, chat_completion, json_response
from tests.inprocess import HOST, call, dispatcher

CONFIG = f'{{"provider": "openai", "api_key": "sk", "custom_host": "{HOST}"}}'
CACHED = f'{{"provider": "openai", "api_key": "sk", "custom_host": "{HOST}", "cache": {{"mode": "simple"}}}}'


def selector(saved: dict[str, str] | None = None) -> ConfigSelector:
    return ConfigSelector(ConfigCache(known_providers=registry.PROVIDERS.keys()), (saved or {}).get)


def pipeline(transport: FakeTransport, cache=None, admit=None) -> Pipeline:
    steps = default_steps(selector({"pc-1": CACHED}), dispatcher(transport), cache)
    if admit is not None:
        steps[0] = admit
    return Pipeline(steps)


class MemoryCache:
    def __init__(self) -> None:
        self.stored: list[Outcome] = []

    def covers(self, state):
        return True

    async def lookup(self, state, policy):
        return CacheHit(self.stored[0], CACHE_HIT) if self.stored else None

    def miss_status(self, policy):
        return CACHE_MISS

    def store(self, state, policy, outcome):
        self.stored.append(outcome)


def answering() -> FakeTransport:
    return FakeTransport(handler=lambda sent: json_response(chat_completion()))


async def test_the_default_pipeline_dispatches_and_reports_the_cache_disabled():
    state = RequestState(call({"x-portkey-config": CACHED}))
    outcome = await pipeline(answering()).run(state)
    assert outcome.ok and state.cache_status == CACHE_DISABLED and len(state.attempts) == 1
    assert state.root is not None and state.root.cache is not None and state.root.cache.mode == "simple"


async def test_a_cache_behind_the_step_answers_the_second_request_without_an_upstream_call():
    transport, cache = answering(), MemoryCache()
    run = pipeline(transport, cache)
    first, second = RequestState(call({"x-portkey-config": "pc-1"})), RequestState(call({"x-portkey-config": "pc-1"}))
    await run.run(first)
    await run.run(second)
    assert (first.cache_status, second.cache_status) == (CACHE_MISS, CACHE_HIT)
    assert len(transport.sent) == 1 and second.attempts == []


async def test_force_refresh_skips_the_lookup_and_stores_the_fresh_answer():
    transport, cache = answering(), MemoryCache()
    run = pipeline(transport, cache)
    await run.run(RequestState(call({"x-portkey-config": "pc-1"})))
    state = RequestState(call({"x-portkey-config": "pc-1", "x-portkey-cache-force-refresh": "true"}))
    await run.run(state)
    assert state.cache_status == CACHE_REFRESH and len(transport.sent) == 2 and len(cache.stored) == 2


async def test_debug_false_switches_caching_off():
    transport, cache = answering(), MemoryCache()
    state = RequestState(call({"x-portkey-config": "pc-1", "x-portkey-debug": "false"}))
    await pipeline(transport, cache).run(state)
    assert state.cache_status == CACHE_DISABLED and cache.stored == []


async def test_without_a_cache_block_the_cache_is_not_asked():
    transport, cache = answering(), MemoryCache()
    state = RequestState(call({"x-portkey-config": CONFIG}))
    await pipeline(transport, cache).run(state)
    assert state.cache_status == CACHE_DISABLED and cache.stored == []


async def test_admission_refuses_before_any_other_step():
    async def deny(state, call_next):
        raise Unauthorized("no key")

    transport = answering()
    with pytest.raises(Unauthorized):
        await pipeline(transport, admit=deny).run(RequestState(call({"x-portkey-config": "missing"})))
    assert transport.sent == []  # not even the config was looked up (it does not exist)


def test_the_steps_are_in_order():
    steps = default_steps(selector(), dispatcher(answering()))
    assert [type(s) for s in steps] == [AdmitAll, SelectConfig, CacheStep, DispatchStep]
