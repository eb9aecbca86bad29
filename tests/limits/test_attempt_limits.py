"""A catalog provider's limits per upstream attempt, in-process: the dispatcher on a fake transport, the
real Limiter on memory counters (limits/attempts.py, dispatch.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from sluicegate.catalog import ResolvedProvider
from sluicegate.errors import BadRequest
from sluicegate.limits.attempts import AttemptLimits, settle_with_request
from sluicegate.limits.checks import Subject
from sluicegate.limits.limiter import Limiter
from sluicegate.limits.memory import MemoryCounters
from sluicegate.limits.model import Limits, parse_limits
from sluicegate.types import Call
from tests.fakes.transport import FakeTransport, chat_completion, json_response
from tests.inprocess import call, config, dispatcher

HOSTS = {"a": "http://127.0.0.1:8001/v1", "b": "http://127.0.0.1:8002/v1", "c": "http://127.0.0.1:8003/v1"}
RPM2 = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}]}


class Catalog:
    def require(self, slug: str) -> ResolvedProvider:
        if slug[1:] not in HOSTS:
            raise BadRequest(f"Provider {slug} not found in the catalog")
        return ResolvedProvider(slug=slug[1:], spec="openai", custom_host=HOSTS[slug[1:]], headers=())


class Facts:
    def __init__(self, **limits: dict[str, Any]) -> None:
        self.limits = {slug: parse_limits(raw) for slug, raw in limits.items()}
        self.lookups: list[str] = []

    def provider_limits(self, slug: str) -> Limits | None:
        self.lookups.append(slug)
        return self.limits.get(slug)

    def price(self, slug: str | None, model: str | None) -> tuple[float, float] | None:
        return None


def upstreams(failing: set[str]) -> FakeTransport:
    """Each catalog host answers 200, or 500 when its slug is in ``failing``."""
    def answer(sent: Any) -> Any:
        slug = next(s for s, host in HOSTS.items() if sent.url.startswith(host))
        return json_response({"error": {"message": "down"}}, 500) if slug in failing else json_response(chat_completion())
    return FakeTransport(answer)


def served_by(transport: FakeTransport) -> list[str]:
    return [next(s for s, host in HOSTS.items() if sent.url.startswith(host)) for sent in transport.sent]


async def run(dispatch: Any, tree: dict[str, Any], the_call: Call | None = None) -> tuple[Any, list[Any], Call]:
    the_call = the_call or call()
    outcome, attempts = await dispatch.run(the_call, config(tree))
    return outcome, attempts, the_call


def setup(facts: Facts, failing: set[str] | None = None) -> tuple[Any, FakeTransport, Limiter]:
    limiter = Limiter(MemoryCounters())
    transport = upstreams(failing if failing is not None else set())
    return dispatcher(transport, catalog=Catalog(), limits=AttemptLimits(limiter, facts)), transport, limiter


FALLBACK = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "@a"}, {"provider": "@b"}]}


def test_a_fallback_targets_rate_limit_holds_and_the_last_refusal_is_the_clients_429() -> None:
    async def scenario() -> None:
        dispatch, transport, _ = setup(Facts(b=RPM2), failing={"a"})
        statuses = []
        for _ in range(3):
            outcome, attempts, _ = await run(dispatch, FALLBACK)
            statuses.append(outcome.status)
        assert statuses == [200, 200, 429]
        assert served_by(transport) == ["a", "b", "a", "b", "a"]  # the third never reached @b
        assert outcome.limited and outcome.provider == "@b"
        headers = dict(outcome.headers)
        assert 1 <= int(headers["Retry-After"]) <= 60 and headers["x-ratelimit-limit"] == "2"
        body = orjson.loads(outcome.body)
        assert body["status"] == "failure" and "Rate limit exceeded for provider 'b'" in body["message"]
        assert [(a.provider, a.status) for a in attempts] == [("@a", 500), ("@b", 429)]
        assert attempts[1].error.startswith("not sent: Rate limit exceeded for provider 'b'")
        assert attempts[1].sent is None
    asyncio.run(scenario())


def test_a_refused_first_target_falls_back_like_an_upstream_429_unless_the_codes_exclude_it() -> None:
    async def scenario() -> None:
        dispatch, transport, _ = setup(Facts(a={"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}]}))
        assert (await run(dispatch, FALLBACK))[0].status == 200  # @a's one
        outcome, attempts, _ = await run(dispatch, FALLBACK)
        assert outcome.status == 200 and [a.status for a in attempts] == [429, 200]
        only_500 = {**FALLBACK, "strategy": {"mode": "fallback", "on_status_codes": [500]}}
        outcome, attempts, _ = await run(dispatch, only_500)
        assert outcome.status == 429 and [a.status for a in attempts] == [429]
        assert served_by(transport) == ["a", "b"]
    asyncio.run(scenario())


def test_a_loadbalance_chooses_again_among_the_targets_whose_limits_still_admit() -> None:
    async def scenario() -> None:
        one = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}]}
        dispatch, transport, _ = setup(Facts(a=one, b=RPM2))
        tree = {"strategy": {"mode": "loadbalance"},
                "targets": [{"provider": "@a", "weight": 0.9}, {"provider": "@b", "weight": 0.1}]}
        statuses = [(await run(dispatch, tree))[0].status for _ in range(4)]  # rng 0.5: @a while it may
        assert statuses == [200, 200, 200, 429]
        assert served_by(transport) == ["a", "b", "b"]
        outcome, attempts, _ = await run(dispatch, tree)
        assert outcome.limited and sorted(a.provider for a in attempts) == ["@a", "@b"]
    asyncio.run(scenario())


def test_least_busy_also_chooses_again_when_a_targets_limits_refuse() -> None:
    async def scenario() -> None:
        dispatch, transport, _ = setup(Facts(a={"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}]}))
        tree = {"strategy": {"mode": "loadbalance", "policy": "least-busy"},
                "targets": [{"provider": "@a"}, {"provider": "@b"}]}
        statuses = [(await run(dispatch, tree))[0].status for _ in range(4)]
        assert statuses == [200] * 4 and served_by(transport).count("a") == 1
    asyncio.run(scenario())


def test_a_failed_attempt_releases_its_reservation_and_an_answer_settles_with_the_requests_usage() -> None:
    async def scenario() -> None:
        # "hi" + max_tokens 10 reserves 11 tokens: a failed attempt's reservation left behind would refuse
        # the next one (22 > 18); settled at 8, the next reservation does not fit (8 + 11 > 18).
        facts = Facts(b={"usage_limits": {"type": "tokens", "credit_limit": 18}})
        failing = {"b"}
        dispatch, _, limiter = setup(facts, failing)
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        outcome, _, failed = await run(dispatch, {"provider": "@b"}, call(body=body))
        assert outcome.status == 500 and failed.on_usage is None
        await asyncio.sleep(0.01)  # the release is queued on the limiter's task
        failing.clear()
        outcome, _, answered = await run(dispatch, {"provider": "@b"}, call(body=body))
        assert outcome.status == 200 and answered.on_usage is not None
        answered.on_usage(5, 3)  # what the request log does when the answer has ended
        await asyncio.sleep(0.01)
        assert await limiter.used(Subject("provider", "b", facts.limits["b"])) == 8
        outcome, attempts, _ = await run(dispatch, {"provider": "@b"}, call(body=body))
        assert outcome.status == 412 and outcome.limited and attempts[0].status == 412
        assert "Usage limit exhausted for provider 'b'" in orjson.loads(outcome.body)["message"]
    asyncio.run(scenario())


def test_a_provider_the_limits_step_admitted_is_not_counted_again_and_others_cost_one_lookup() -> None:
    async def scenario() -> None:
        facts = Facts(b={"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}]})
        dispatch, transport, _ = setup(facts)
        for _ in range(3):
            the_call = call()
            the_call.limited_provider = "b"
            assert (await run(dispatch, {"provider": "@b"}, the_call))[0].status == 200
        assert served_by(transport) == ["b"] * 3
        facts.lookups.clear()
        direct = {"provider": "openai", "custom_host": HOSTS["c"]}
        assert (await run(dispatch, direct))[0].status == 200 and facts.lookups == []  # not a catalog provider
        assert (await run(dispatch, {"provider": "@c"}))[0].status == 200 and facts.lookups == ["c"]
    asyncio.run(scenario())


def test_settling_with_the_request_keeps_the_requests_own_settlement() -> None:
    seen: list[tuple[str, int, int]] = []

    class Ticket:
        def __init__(self, name: str) -> None:
            self.name = name

        def settle(self, prompt: int, completion: int) -> None:
            seen.append((self.name, prompt, completion))

    the_call = call()
    settle_with_request(the_call, Ticket("attempt"))  # type: ignore[arg-type]
    assert the_call.on_usage is not None
    the_call.on_usage(2, 3)
    assert seen == [("attempt", 2, 3)]
    seen.clear()
    the_call.on_usage = Ticket("request").settle
    settle_with_request(the_call, Ticket("attempt"))  # type: ignore[arg-type]
    the_call.on_usage(4, 1)
    assert seen == [("request", 4, 1), ("attempt", 4, 1)]


@pytest.mark.parametrize("provider", ["openai", "@nolimits"])
def test_no_subject_without_a_catalog_providers_limits(provider: str) -> None:
    gate = AttemptLimits(Limiter(MemoryCounters()), Facts(b=RPM2))
    assert gate.subject(provider, call()) is None
    assert gate.subject("@b", call()) == Subject("provider", "b", parse_limits(RPM2))
