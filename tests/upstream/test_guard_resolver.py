"""Connection-time check through the GuardedResolver, with a stub resolver and a fake clock (no DNS)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from tests.upstream.guard_stubs import FakeClock, StubResolver

PUBLIC = "93.184.216.34"


def make(table, clock=None, **settings):
    stub = StubResolver(table)
    settings.setdefault("host", "0.0.0.0")
    guard = Guard(GuardPolicy.from_settings(Settings(**settings)), resolver=stub, clock=clock or FakeClock())
    return guard, guard.resolver(), stub


async def test_public_answer_is_returned_pinned():
    _, resolver, _ = make({"llm.example.com": [PUBLIC, "2606:4700::1"]})
    answers = await resolver.resolve("llm.example.com", 443)
    assert [(a["host"], a["port"], a["family"]) for a in answers] == [
        (PUBLIC, 443, socket.AF_INET), ("2606:4700::1", 443, socket.AF_INET6)]
    assert all(a["flags"] & socket.AI_NUMERICHOST for a in answers)


async def test_name_resolving_to_private_address_is_refused():
    _, resolver, _ = make({"llm.example.com": ["10.0.0.5"]})
    with pytest.raises(InvalidCustomHost) as caught:
        await resolver.resolve("llm.example.com", 8000)
    assert caught.value.reason == (
        "llm.example.com resolves to 10.0.0.5, a private address; add it to TRUSTED_CUSTOM_HOSTS to allow it")


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"])
async def test_name_resolving_to_metadata_is_refused_even_if_allow_listed(address):
    _, resolver, _ = make({"meta.example.com": [address]},
                          trusted_custom_hosts=("meta.example.com", "0.0.0.0/0", "::/0"))
    with pytest.raises(InvalidCustomHost, match="a cloud metadata endpoint.*, which is always blocked"):
        await resolver.resolve("meta.example.com", 80)


@pytest.mark.parametrize("answers", [
    [PUBLIC, "10.0.0.5"],
    ["10.0.0.5", PUBLIC],
    [PUBLIC, "127.0.0.1"],
    ["2606:4700::1", "::ffff:127.0.0.1"],
    ["2606:4700::1", "fe80::1%1"],
    [PUBLIC, "0.0.0.0"],
])
async def test_one_bad_address_among_several_refuses_the_name(answers):
    _, resolver, _ = make({"multi.example.com": answers})
    with pytest.raises(InvalidCustomHost, match="multi.example.com resolves to"):
        await resolver.resolve("multi.example.com", 443)


async def test_allow_listed_cidr_accepts_private_answers():
    _, resolver, _ = make({"llm.example.com": ["10.0.0.5", "10.0.0.6"]}, allowed_upstreams=("10.0.0.0/8",))
    answers = await resolver.resolve("llm.example.com", 8000)
    assert [a["host"] for a in answers] == ["10.0.0.5", "10.0.0.6"]


async def test_cidr_allow_covers_only_its_range():
    _, resolver, _ = make({"llm.example.com": ["10.0.0.5", "192.168.0.5"]}, allowed_upstreams=("10.0.0.0/8",))
    with pytest.raises(InvalidCustomHost, match="192.168.0.5, a private address"):
        await resolver.resolve("llm.example.com", 8000)


async def test_allow_listed_name_vouches_for_its_addresses():
    table = {"vllm.llm.svc.cluster.local": ["10.96.3.4"]}
    _, resolver, _ = make(table, allowed_upstreams=("*.svc.cluster.local",))
    assert (await resolver.resolve("vllm.llm.svc.cluster.local", 8000))[0]["host"] == "10.96.3.4"


async def test_blocked_name_costs_no_dns_query():
    _, resolver, stub = make({"metadata.google.internal": ["8.8.8.8"], "x.nip.io": ["8.8.8.8"]})
    for host in ("metadata.google.internal", "x.nip.io", "METADATA.google.internal."):
        with pytest.raises(InvalidCustomHost):
            await resolver.resolve(host, 80)
    assert stub.calls == []


async def test_service_port_refused_before_resolution():
    _, resolver, stub = make({"llm.example.com": [PUBLIC]})
    with pytest.raises(InvalidCustomHost, match="port 6379"):
        await resolver.resolve("llm.example.com", 6379)
    assert stub.calls == []


async def test_ip_literal_reaching_the_resolver_is_judged_without_dns():
    _, resolver, stub = make({})
    with pytest.raises(InvalidCustomHost, match="10.0.0.5 is a private address"):
        await resolver.resolve("10.0.0.5", 80)
    assert (await resolver.resolve("8.8.8.8", 80))[0]["host"] == "8.8.8.8"
    assert stub.calls == []


async def test_localhost_default_does_not_vouch_for_non_loopback_answers():
    _, resolver, _ = make({"localhost": ["127.0.0.1", "::1"], "api.localhost": ["10.0.0.5"]}, host="127.0.0.1")
    assert [a["host"] for a in await resolver.resolve("localhost", 8000)] == ["127.0.0.1", "::1"]
    with pytest.raises(InvalidCustomHost, match="10.0.0.5, a private address"):
        await resolver.resolve("api.localhost", 8000)


async def test_loopback_answer_on_public_gateway_explains_why():
    _, resolver, _ = make({"dev.example.com": ["127.0.0.1"]})
    with pytest.raises(InvalidCustomHost, match="listens on 0.0.0.0, so loopback is not trusted by default"):
        await resolver.resolve("dev.example.com", 8000)


async def test_resolver_cannot_move_the_port():
    class PortMover(StubResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            answers = await super().resolve(host, port, family)
            return [dict(a, port=22) for a in answers]

    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")), resolver=PortMover({"a.example.com": [PUBLIC]}))
    assert (await guard.resolver().resolve("a.example.com", 8000))[0]["port"] == 8000


async def test_resolver_answer_that_is_not_an_address_is_refused():
    _, resolver, _ = make({"a.example.com": ["other.example.com"]})
    with pytest.raises(InvalidCustomHost, match="not an address"):
        await resolver.resolve("a.example.com", 80)


async def test_dns_failure_propagates_and_is_not_cached():
    _, resolver, stub = make({"gone.example.com": socket.gaierror(-2, "Name or service not known")})
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            await resolver.resolve("gone.example.com", 80)
    assert len(stub.calls) == 2


async def test_empty_answer_is_an_oserror():
    _, resolver, _ = make({"empty.example.com": []})
    with pytest.raises(OSError, match="did not resolve"):
        await resolver.resolve("empty.example.com", 80)


async def test_verdict_cached_for_the_ttl(clock: FakeClock):
    _, resolver, stub = make({"llm.example.com": [PUBLIC]}, clock=clock)
    for _ in range(5):
        await resolver.resolve("llm.example.com", 443)
    clock.advance(29.9)
    await resolver.resolve("llm.example.com", 443)
    assert len(stub.calls) == 1
    clock.advance(0.2)
    await resolver.resolve("llm.example.com", 443)
    assert len(stub.calls) == 2


async def test_cache_is_per_host_and_port(clock: FakeClock):
    _, resolver, stub = make({"llm.example.com": [PUBLIC]}, clock=clock)
    await resolver.resolve("llm.example.com", 443)
    await resolver.resolve("llm.example.com", 8443)
    assert stub.calls == [("llm.example.com", 443), ("llm.example.com", 8443)]


async def test_refusals_are_cached_too(clock: FakeClock):
    _, resolver, stub = make({"llm.example.com": ["10.0.0.5"]}, clock=clock)
    for _ in range(3):
        with pytest.raises(InvalidCustomHost):
            await resolver.resolve("llm.example.com", 80)
    assert len(stub.calls) == 1


async def test_dns_rebinding_pinned_within_ttl_refused_after(clock: FakeClock):
    _, resolver, stub = make({"rebind.example.com": [[PUBLIC], ["10.0.0.5"]]}, clock=clock)
    first = await resolver.resolve("rebind.example.com", 80)
    clock.advance(10)
    second = await resolver.resolve("rebind.example.com", 80)  # within the TTL: the pinned answer
    assert [a["host"] for a in first] == [a["host"] for a in second] == [PUBLIC]
    assert len(stub.calls) == 1
    clock.advance(25)
    with pytest.raises(InvalidCustomHost, match="resolves to 10.0.0.5"):
        await resolver.resolve("rebind.example.com", 80)
    assert len(stub.calls) == 2
    with pytest.raises(InvalidCustomHost):  # and it stays refused; the private answer is never returned
        await resolver.resolve("rebind.example.com", 80)


async def test_custom_ttl(clock: FakeClock):
    stub = StubResolver({"llm.example.com": [PUBLIC]})
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")), resolver=stub, clock=clock, ttl_s=1.0)
    await guard.resolver().resolve("llm.example.com", 80)
    clock.advance(1.5)
    await guard.resolver().resolve("llm.example.com", 80)
    assert len(stub.calls) == 2


async def test_concurrent_lookups_share_one_query():
    gate = asyncio.Event()

    class Slow(StubResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            await gate.wait()
            return await super().resolve(host, port, family)

    stub = Slow({"llm.example.com": [PUBLIC]})
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")), resolver=stub)
    waiters = [asyncio.ensure_future(guard.resolver().resolve("llm.example.com", 80)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters)
    assert len(stub.calls) == 1 and all(r[0]["host"] == PUBLIC for r in results)


async def test_cancelled_waiter_does_not_break_the_lookup():
    gate = asyncio.Event()

    class Slow(StubResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            await gate.wait()
            return await super().resolve(host, port, family)

    stub = Slow({"llm.example.com": ["10.0.0.5"]})
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")), resolver=stub)
    first = asyncio.ensure_future(guard.resolver().resolve("llm.example.com", 80))
    second = asyncio.ensure_future(guard.resolver().resolve("llm.example.com", 80))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    with pytest.raises(InvalidCustomHost):
        await second
    assert len(stub.calls) == 1


async def test_set_extra_allows_drops_cached_verdicts(clock: FakeClock):
    guard, resolver, stub = make({"llm.example.com": ["10.0.0.5"]}, clock=clock)
    with pytest.raises(InvalidCustomHost):
        await resolver.resolve("llm.example.com", 8000)
    guard.set_extra_allows(["10.0.0.0/8"])
    assert (await resolver.resolve("llm.example.com", 8000))[0]["host"] == "10.0.0.5"
    guard.set_extra_allows([])
    with pytest.raises(InvalidCustomHost):
        await resolver.resolve("llm.example.com", 8000)
    assert len(stub.calls) == 3


async def test_connect_time_refusal_is_logged(caplog):
    _, resolver, _ = make({"llm.example.com": ["10.0.0.5"]})
    with caplog.at_level(logging.WARNING, logger="sluicegate.security"):
        for _ in range(2):
            with pytest.raises(InvalidCustomHost):
                await resolver.resolve("llm.example.com", 8000)
    records = [r for r in caplog.records if r.name == "sluicegate.security"]
    assert len(records) == 2 and records[0].stage == "connect" and "10.0.0.5" in records[0].reason


async def test_trailing_dot_and_case_are_normalised_for_the_rules():
    _, resolver, _ = make({"LLM.Example.COM.": ["10.0.0.5"]}, allowed_upstreams=("llm.example.com",))
    assert (await resolver.resolve("LLM.Example.COM.", 80))[0]["host"] == "10.0.0.5"


async def test_numeric_ipv4_forms_reaching_the_resolver_are_judged_as_addresses():
    _, resolver, stub = make({})
    for host in ("127.1", "2130706433", "0x7f000001"):
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await resolver.resolve(host, 80)
    with pytest.raises(InvalidCustomHost, match="not a valid IPv4"):
        await resolver.resolve("1.2.3.999", 80)
    assert stub.calls == []


async def test_allow_list_change_during_a_lookup_is_not_cached_from_the_old_policy():
    gate = asyncio.Event()

    class Slow(StubResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            await gate.wait()
            return await super().resolve(host, port, family)

    stub = Slow({"llm.example.com": ["10.0.0.5"]})
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")), resolver=stub, clock=FakeClock())
    old = asyncio.ensure_future(guard.resolver().resolve("llm.example.com", 80))
    for _ in range(5):  # let the first lookup start and block inside the resolver
        await asyncio.sleep(0)
    guard.set_extra_allows(["10.0.0.0/8"])
    new = asyncio.ensure_future(guard.resolver().resolve("llm.example.com", 80))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(InvalidCustomHost):
        await old  # judged under the allow-list it started with
    assert (await new)[0]["host"] == "10.0.0.5"
    assert (await guard.resolver().resolve("llm.example.com", 80))[0]["host"] == "10.0.0.5"
    assert len(stub.calls) == 2
