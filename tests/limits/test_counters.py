"""Both counter stores, one behaviour: the same scenarios on memory and on the real Redis (via the Lua
script, its clock pinned through the script's override so windows and periods can be stepped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from sluicegate.limits.backend import Counters
from sluicegate.limits.checks import Estimate, Subject, plan
from sluicegate.limits.memory import MemoryCounters
from sluicegate.limits.model import parse_limits
from sluicegate.limits.redis_backend import RedisCounters


class Clock:
    def __init__(self, at: str = "2026-03-31T23:59:00") -> None:
        self.now = int(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[tuple[Counters, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryCounters(clock), clock
        return
    store = RedisCounters(request.getfixturevalue("shared_redis"), prefix=redis_prefix, clock_override=clock)
    yield store, clock
    await store.close()


def checks(raw: dict[str, object], tokens: int = 100, cost: float | None = 1.0, who: str = "ak-1"):
    return plan([Subject("key", who, parse_limits(raw))], Estimate(tokens, cost)).checks


RPM3 = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 3}]}


async def test_a_burst_admits_exactly_n_and_the_window_slides(counters: tuple[Counters, Clock]) -> None:
    store, clock = counters
    c = checks(RPM3)
    verdicts = [await store.admit(c, f"r{i}") for i in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    assert [v.remaining[0] for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].failed == 0 and verdicts[3].reset_ms[0] == 60_000
    clock.now += 30_000
    assert not (await store.admit(c, "r5")).admitted  # a sliding window: no refill at a minute boundary
    clock.now += 30_000
    assert (await store.admit(c, "r6")).admitted  # the first three left the window together
    assert (await store.admit(c, "r7")).admitted


async def test_all_or_nothing_across_subjects(counters: tuple[Counters, Clock]) -> None:
    store, _ = counters
    key = Subject("key", "ak-1", parse_limits({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}]}))
    workspace = Subject("workspace", "ws-1", parse_limits(RPM3))
    both = plan([key, workspace], Estimate(1, None)).checks
    key_only = plan([key], Estimate(1, None)).checks
    for i in range(3):
        assert (await store.admit(both, f"b{i}")).admitted
    refused = await store.admit(both, "b3")
    assert refused.failed == 1  # the workspace refused, so the key's counter took nothing
    for i in range(2):
        assert (await store.admit(key_only, f"k{i}")).admitted
    assert not (await store.admit(key_only, "k2")).admitted  # 3 + 2 = the key's 5


async def test_a_token_budget_reserves_then_reconciles(counters: tuple[Counters, Clock]) -> None:
    store, _ = counters
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 1000, "alert_threshold": 600}}, tokens=400)
    assert (await store.admit(c, "a")).admitted
    assert (await store.admit(c, "b")).admitted
    refused = await store.admit(c, "c")  # 800 reserved + 400 > 1000
    assert refused.failed == 0 and refused.remaining[0] == pytest.approx(200)
    assert await store.settle(c, "a", [50.0]) == []  # actual 50: 450 taken
    assert (await store.admit(c, "c")).admitted  # 450 + 400 ≤ 1000
    alerts = await store.settle(c, "b", [600.0])
    assert [(a.used, a.threshold) for a in alerts] == [(650.0, 600.0)]
    assert await store.settle(c, "c", [10.0]) == []  # once per period
    assert await store.used(c[0]) == pytest.approx(660)


async def test_a_dead_process_reservation_expires_after_its_ttl(counters: tuple[Counters, Clock]) -> None:
    store, clock = counters
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 500}}, tokens=400)
    assert (await store.admit(c, "lost", ttl_ms=5_000)).admitted
    assert not (await store.admit(c, "next", ttl_ms=5_000)).admitted
    clock.now += 5_000
    assert (await store.admit(c, "next", ttl_ms=5_000)).admitted


async def test_a_monthly_budget_resets_at_the_utc_boundary_and_by_hand(counters: tuple[Counters, Clock]) -> None:
    store, clock = counters
    c = checks({"usage_limits": {"type": "cost", "credit_limit": 2, "periodic_reset": "monthly"}}, cost=1.5)
    assert (await store.admit(c, "a")).admitted
    await store.settle(c, "a", [1.5])
    refused = await store.admit(c, "b")
    assert not refused.admitted and refused.reset_ms[0] == 60_000  # 23:59 on March 31st
    assert await store.used(c[0]) == pytest.approx(1.5)
    clock.now += 60_000
    assert await store.used(c[0]) == 0  # April's usage, before any request: Redis showed March's
    assert (await store.admit(c, "b")).admitted
    await store.settle(c, "b", [1.5])
    assert not (await store.admit(c, "c")).admitted
    await store.reset("key:ak-1:")
    assert (await store.admit(c, "c")).admitted


async def test_a_cost_budget_admits_what_fits_it_despite_float_rounding(counters: tuple[Counters, Clock]) -> None:
    # 0.1 + 0.1 is 0.2, and 0.2 + 0.1 is 0.30000000000000004: the third request of 0.1 was refused by a
    # budget of 0.3, with "0.1 left, this request reserves up to 0.1".
    store, _ = counters
    c = checks({"usage_limits": {"type": "cost", "credit_limit": 0.3}}, cost=0.1)
    for rid in ("a", "b", "c"):
        assert (await store.admit(c, rid)).admitted, rid
        await store.settle(c, rid, [0.1])
    assert not (await store.admit(c, "d")).admitted


async def test_token_rate_limits_count_the_settled_usage(counters: tuple[Counters, Clock]) -> None:
    store, clock = counters
    c = checks({"rate_limits": [{"type": "tokens", "unit": "rph", "value": 1000}]}, tokens=600)
    assert (await store.admit(c, "a")).admitted
    assert not (await store.admit(c, "b")).admitted
    await store.settle(c, "a", [100.0])
    assert (await store.admit(c, "b")).admitted  # 100 + 600
    assert not (await store.admit(c, "c")).admitted
    clock.now += 3_600_000  # both left the window: its running total with them
    assert (await store.admit(c, "c")).admitted
    assert not (await store.admit(c, "d")).admitted  # 600 + 600 > 1000


async def test_redis_under_concurrency_admits_exactly_n(shared_redis: str, redis_prefix: str) -> None:
    """Redis's own clock; 200 requests at once over 4 connections pools against 100 rpm. The subject is
    exact counting, not timeouts: generous ones, so a CPU-starved test process (a loaded CI machine) cannot
    turn a slow answer into a refusal."""
    stores = [RedisCounters(shared_redis, prefix=redis_prefix, timeout_s=30, connect_timeout_s=30) for _ in range(4)]
    c = checks({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 100}]})
    verdicts = await asyncio.gather(*(stores[i % 4].admit(c, f"r{i}") for i in range(200)))
    assert sum(v.admitted for v in verdicts) == 100
    refused = [v for v in verdicts if not v.admitted]
    assert all(0 < v.reset_ms[0] <= 60_000 for v in refused)
    for store in stores:
        await store.close()


async def test_redis_down_is_an_error_at_once_and_up_again_resumes(private_redis, redis_prefix: str) -> None:
    import time

    from sluicegate.limits.backend import StoreUnavailable

    store = RedisCounters(private_redis.url, prefix=redis_prefix)
    c = checks(RPM3)
    assert (await store.admit(c, "a")).admitted
    private_redis.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Redis"):
        await store.admit(c, "b")
    assert time.monotonic() - started < 2  # no hang: one short timeout, no retries
    with pytest.raises(StoreUnavailable, match="Redis"):  # reading a budget's use was a 500 (a redis error)
        await store.used(checks({"usage_limits": {"type": "tokens", "credit_limit": 10}})[0])
    private_redis.start()  # same port, empty (no persistence): counting starts again
    verdicts = [await store.admit(c, f"c{i}") for i in range(4)]
    assert [v.admitted for v in verdicts] == [True, True, True, False]
    await store.close()


async def test_redis_that_stops_answering_is_an_error_within_the_timeout(private_redis, redis_prefix: str) -> None:
    """A Redis that accepts connections but answers nothing (SIGSTOP: a frozen host) is unavailable after
    the client's 2 s timeout, for pooled and new connections alike: a request never hangs on it."""
    import signal
    import time

    from sluicegate.limits.backend import StoreUnavailable
    from sluicegate.limits.redis_backend import TIMEOUT_S

    store = RedisCounters(private_redis.url, prefix=redis_prefix)
    c = checks({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 100}]})
    assert (await store.admit(c, "a")).admitted
    private_redis.proc.send_signal(signal.SIGSTOP)
    try:
        for name in ("pooled", "new"):
            fresh = store if name == "pooled" else RedisCounters(private_redis.url, prefix=redis_prefix)
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="Redis"):
                await fresh.admit(c, f"frozen-{name}")
            assert time.monotonic() - started < TIMEOUT_S + 1, name
            if fresh is not store:
                await fresh.close()
    finally:
        private_redis.proc.send_signal(signal.SIGCONT)
    assert (await store.admit(c, "after")).admitted  # answering again: admissions resume
    await store.close()


async def test_pooled_connections_from_before_a_redis_restart_do_not_refuse_admissions(
        private_redis, redis_prefix: str) -> None:
    store = RedisCounters(private_redis.url, prefix=redis_prefix)
    c = checks({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 100}]})
    # Twenty at once leave up to twenty pooled connections, all pointing at the server about to go away.
    assert all(v.admitted for v in await asyncio.gather(*(store.admit(c, f"a{i}") for i in range(20))))
    private_redis.stop()
    private_redis.start()
    verdicts = await asyncio.gather(*(store.admit(c, f"b{i}") for i in range(20)))
    assert all(v.admitted for v in verdicts)  # each stale socket fails once and is retried on a new one
    await store.close()


async def test_an_admission_sent_twice_counts_once(counters: tuple[Counters, Clock]) -> None:
    store, _ = counters
    c = checks({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 3},
                                {"type": "tokens", "unit": "rpm", "value": 1000}]}, tokens=300)
    assert (await store.admit(c, "same")).admitted
    await store.admit(c, "same")  # a retry whose first reply was lost
    verdicts = [await store.admit(c, f"other{i}") for i in range(3)]
    assert [v.admitted for v in verdicts] == [True, True, False]  # 300 + 2 × 300 tokens; a 4th would be 1,200


async def test_settling_many_at_once_is_settling_each(counters: tuple[Counters, Clock]) -> None:
    store, _ = counters
    c = checks({"rate_limits": [{"type": "tokens", "unit": "rpm", "value": 1000}],
                "usage_limits": {"type": "tokens", "credit_limit": 1000, "alert_threshold": 150}}, tokens=300)
    for rid in ("a", "b", "c"):
        assert (await store.admit(c, rid)).admitted
    assert not (await store.admit(c, "d")).admitted
    alerts = await store.settle_many([(c, rid, [100.0, 100.0]) for rid in ("a", "b", "c")])
    assert [(a.used, a.threshold) for a in alerts] == [(200.0, 150.0)]  # crossed by the second, once
    assert await store.used(c[1]) == pytest.approx(300)
    verdicts = [await store.admit(c, f"e{i}") for i in range(3)]  # 300 taken in each: room for two more
    assert [v.admitted for v in verdicts] == [True, True, False]


async def test_an_alert_is_once_per_period_across_a_restart_and_again_the_next_period() -> None:
    """One process: budget usage and the period already alerted are saved and restored, so a restart
    does not repeat the alert; the next period alerts again."""
    clock = Clock("2026-03-31T12:00:00")
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 1000, "periodic_reset": "daily",
                                 "alert_threshold": 100}}, tokens=10)
    before = MemoryCounters(clock)
    assert (await before.admit(c, "a")).admitted
    assert [a.used for a in await before.settle(c, "a", [150.0])] == [150.0]
    after = MemoryCounters(clock)  # a restart: what the database kept
    after.restore(before.budgets())
    assert await after.used(c[0]) == 150.0
    assert (await after.admit(c, "b")).admitted
    assert await after.settle(c, "b", [10.0]) == []  # crossed already this period
    clock.now += 12 * 3_600_000  # 00:00 UTC: a new day
    assert (await after.admit(c, "c")).admitted
    assert [a.used for a in await after.settle(c, "c", [120.0])] == [120.0]


async def test_settlements_after_redis_forgot_the_script_count_once(private_redis, redis_prefix: str) -> None:
    """A batch of settlements is pipelined by the script's SHA; a Redis that lost its scripts (restarted, or
    SCRIPT FLUSH) answers NOSCRIPT and applies nothing, so the batch is sent once more, after loading it."""
    from redis.asyncio import Redis

    store = RedisCounters(private_redis.url, prefix=redis_prefix)
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 10_000}}, tokens=300)
    for rid in ("a", "b"):
        assert (await store.admit(c, rid)).admitted
    admin = Redis.from_url(private_redis.url)
    await admin.script_flush()
    await store.settle_many([(c, rid, [100.0]) for rid in ("a", "b")])
    assert await store.used(c[0]) == pytest.approx(200)  # each settlement once: not 0, not 400
    await store.settle_many([(c, "a", [None])])  # nothing to settle: no call at all
    await admin.aclose()
    await store.close()


async def test_a_budget_follows_its_reservations_in_flight_as_they_come_settle_and_expire(
        counters: tuple[Counters, Clock]) -> None:
    """The budget keeps the total of its reservations in flight rather than summing them at each admission;
    every step of their lives (admitted, admitted again, settled, expired, settled after expiring) moves it."""
    store, clock = counters
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 10_000}}, tokens=100)
    for i in range(50):
        verdict = await store.admit(c, f"early{i}", ttl_ms=5_000)
        assert verdict.admitted and verdict.remaining[0] == pytest.approx(10_000 - 100 * (i + 1))
    await store.admit(c, "early0", ttl_ms=5_000)  # a retry whose first reply was lost: still one reservation
    clock.now += 1_000
    for i in range(20):
        assert (await store.admit(c, f"late{i}", ttl_ms=5_000)).admitted
    for i in range(10):
        assert await store.settle(c, f"early{i}", [10.0]) == []
    # used 100; in flight: 40 early and 20 late reservations (6,000); this one reserves 100 more
    assert (await store.admit(c, "probe1", ttl_ms=5_000)).remaining[0] == pytest.approx(10_000 - 100 - 6_100)
    clock.now += 4_000  # the early reservations expire (their processes died, say); the rest stay
    assert (await store.admit(c, "probe2", ttl_ms=5_000)).remaining[0] == pytest.approx(10_000 - 100 - 2_200)
    assert await store.settle(c, "early20", [1.0]) == []  # settled after its reservation expired: usage only
    assert await store.settle(c, "late0", [1.0]) == []
    assert (await store.admit(c, "probe3", ttl_ms=5_000)).remaining[0] == pytest.approx(10_000 - 102 - 2_200)
    clock.now += 10_000  # everything expired
    assert (await store.admit(c, "probe4", ttl_ms=5_000)).remaining[0] == pytest.approx(10_000 - 102 - 100)


async def test_a_cost_budget_carries_no_rounding_drift_once_nothing_is_in_flight(
        counters: tuple[Counters, Clock]) -> None:
    store, _ = counters
    limit = {"usage_limits": {"type": "cost", "credit_limit": 0.7}}
    costs = {"a": 0.1, "b": 0.2, "c": 0.3}
    for rid, cost in costs.items():
        assert (await store.admit(checks(limit, cost=cost), rid)).admitted
    for rid, cost in costs.items():
        await store.settle(checks(limit, cost=cost), rid, [0.0])
    # 0.1 + 0.2 + 0.3, less the same, is 1e-16 in floating point, enough to refuse the whole budget; with
    # nothing in flight the total must be 0
    assert (await store.admit(checks(limit, cost=0.7), "all-of-it")).admitted


async def test_a_budget_reset_by_hand_keeps_its_reservations_in_flight(counters: tuple[Counters, Clock]) -> None:
    """A reset clears the usage; the requests in flight still hold their reservations, and settle once."""
    store, _ = counters
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 1000}}, tokens=300)
    for rid in ("a", "b", "c"):
        assert (await store.admit(c, rid)).admitted
    await store.reset("key:ak-1:")
    await store.settle(c, "a", [200.0])  # settled before any admission after the reset
    assert not (await store.admit(c, "d")).admitted  # used 200 + b and c in flight (600) + 300 > 1000
    for rid in ("b", "c"):
        await store.settle(c, rid, [100.0])
    verdicts = [await store.admit(c, rid) for rid in ("d", "e", "f")]
    assert [v.admitted for v in verdicts] == [True, True, False]  # used 400: room for two more
    assert await store.used(c[0]) == pytest.approx(400)


async def test_a_budget_admission_does_not_sum_the_reservations_in_flight(private_redis, redis_prefix: str) -> None:
    """Redis counts the commands its scripts run: with hundreds of reservations in flight, admissions read
    the budget's running total, never every reservation's amount (HVALS)."""
    from redis.asyncio import Redis

    store = RedisCounters(private_redis.url, prefix=redis_prefix)
    admin = Redis.from_url(private_redis.url, decode_responses=True)
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 1_000_000}}, tokens=10)
    for i in range(300):
        assert (await store.admit(c, f"r{i}")).admitted
    await admin.config_resetstat()
    verdict = await store.admit(c, "one-more")
    assert verdict.remaining[0] == pytest.approx(1_000_000 - 301 * 10)
    stats = await admin.info("commandstats")
    assert "cmdstat_evalsha" in stats and "cmdstat_hvals" not in stats
    await admin.aclose()
    await store.close()


async def test_reservations_whose_keys_redis_expired_no_longer_count(shared_redis: str, redis_prefix: str) -> None:
    """A process that died mid-request left reservations, and nothing touched the budget until Redis expired
    their keys (they live for the TTL): the running total they were part of goes with them."""
    store = RedisCounters(shared_redis, prefix=redis_prefix)
    c = checks({"usage_limits": {"type": "tokens", "credit_limit": 1000}}, tokens=400)
    for rid in ("lost1", "lost2"):
        assert (await store.admit(c, rid, ttl_ms=100)).admitted
    assert not (await store.admit(c, "next", ttl_ms=100)).admitted
    await asyncio.sleep(0.3)  # Redis's own clock expires the keys (the script reads it: no override here)
    verdicts = [await store.admit(c, rid) for rid in ("next", "then", "after")]
    assert [v.admitted for v in verdicts] == [True, True, False]
    await store.close()
