"""CircuitBreaker transitions under a fake clock."""

from __future__ import annotations

import pytest

from sluicegate.config.model import BreakerPolicy, Target
from sluicegate.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, breaker_key, is_failure

POLICY = BreakerPolicy(failure_threshold=3, cooldown_ms=30_000)
KEY = "openai|http://llm/v1||"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock) -> CircuitBreaker:
    return CircuitBreaker(clock)


def fail(breaker: CircuitBreaker, times: int, policy: BreakerPolicy = POLICY, key: str = KEY, outcome=500) -> None:
    for _ in range(times):
        breaker.record(key, policy, outcome)


def test_opens_after_threshold_consecutive_failures(breaker):
    fail(breaker, 2)
    assert breaker.state(KEY, POLICY) == CLOSED and breaker.allow(KEY, POLICY)
    fail(breaker, 1)
    assert breaker.state(KEY, POLICY) == OPEN
    assert not breaker.allow(KEY, POLICY)


def test_a_success_resets_the_run(breaker):
    fail(breaker, 2)
    breaker.record(KEY, POLICY, 200)
    fail(breaker, 2)
    assert breaker.state(KEY, POLICY) == CLOSED


def test_cooldown_then_exactly_one_trial_then_success_closes(breaker, clock):
    fail(breaker, 3)
    clock.now += 29.999
    assert breaker.state(KEY, POLICY) == OPEN
    clock.now += 0.001
    assert breaker.state(KEY, POLICY) == HALF_OPEN
    assert breaker.admits(KEY, POLICY)  # peeking takes no slot
    assert breaker.allow(KEY, POLICY)
    assert not breaker.allow(KEY, POLICY)  # the trial is in flight
    assert not breaker.admits(KEY, POLICY)
    breaker.record(KEY, POLICY, True)
    assert breaker.state(KEY, POLICY) == CLOSED and breaker.allow(KEY, POLICY)
    assert len(breaker) == 0


def test_failed_trial_reopens_for_a_full_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    assert breaker.allow(KEY, POLICY)
    breaker.record(KEY, POLICY, None)
    assert breaker.state(KEY, POLICY) == OPEN
    clock.now += 29
    assert not breaker.allow(KEY, POLICY)
    clock.now += 1
    assert breaker.allow(KEY, POLICY)


def test_a_lost_trial_frees_its_slot_after_another_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    assert breaker.allow(KEY, POLICY)  # this request never reports back
    clock.now += 29
    assert not breaker.allow(KEY, POLICY)
    clock.now += 1
    assert breaker.allow(KEY, POLICY)


def test_stragglers_reporting_while_open_change_nothing(breaker, clock):
    fail(breaker, 3)
    breaker.record(KEY, POLICY, 200)
    fail(breaker, 5)
    clock.now += 30
    assert breaker.state(KEY, POLICY) == HALF_OPEN


def test_explicit_now_overrides_the_clock(breaker):
    for t in (1.0, 2.0, 3.0):
        breaker.record(KEY, POLICY, 503, now=t)
    assert breaker.state(KEY, POLICY, now=32.9) == OPEN
    assert breaker.state(KEY, POLICY, now=33.0) == HALF_OPEN


@pytest.mark.parametrize(
    "policy, outcome, expected",
    [
        (POLICY, 500, True),
        (POLICY, 503, True),
        (POLICY, 429, True),
        (POLICY, None, True),
        (POLICY, False, True),
        (POLICY, True, False),
        (POLICY, 200, False),
        (POLICY, 400, False),  # the client's fault says nothing about the upstream's health
        (POLICY, 408, False),
        (BreakerPolicy(1, 1000, frozenset({401, 500})), 401, True),
        (BreakerPolicy(1, 1000, frozenset({401, 500})), 503, False),
        (BreakerPolicy(1, 1000, frozenset({401, 500})), None, True),
    ],
)
def test_what_counts_as_a_failure(policy, outcome, expected):
    assert is_failure(policy, outcome) is expected


def test_non_failure_statuses_do_not_open(breaker):
    fail(breaker, 10, outcome=400)
    assert breaker.state(KEY, POLICY) == CLOSED


def test_no_policy_means_always_allowed_and_nothing_stored(breaker):
    fail(breaker, 10, policy=None)
    assert breaker.allow(KEY, None) and breaker.state(KEY, None) == CLOSED and len(breaker) == 0


RATE = BreakerPolicy(failure_threshold=None, cooldown_ms=60_000, failure_threshold_percentage=20, minimum_requests=10)


def test_rate_rule_waits_for_minimum_requests_then_opens_above_the_percentage(breaker):
    fail(breaker, 2, policy=RATE, outcome=200)
    fail(breaker, 3, policy=RATE)  # 3 of 5 failed, but fewer than 10 requests
    assert breaker.state(KEY, RATE) == CLOSED
    fail(breaker, 4, policy=RATE, outcome=200)  # 3 of 9
    assert breaker.state(KEY, RATE) == CLOSED
    fail(breaker, 1, policy=RATE, outcome=200)  # 3 of 10 = 30% > 20%: judged on every record
    assert breaker.state(KEY, RATE) == OPEN


def test_rate_exactly_at_the_percentage_does_not_open(breaker):
    fail(breaker, 8, policy=RATE, outcome=200)
    fail(breaker, 2, policy=RATE)  # 2 of 10 = 20%, not more
    assert breaker.state(KEY, RATE) == CLOSED


@pytest.mark.parametrize("pause_s, expected", [(0, OPEN), (60, OPEN), (61, CLOSED)])
def test_rate_window_tumbles_after_a_cooldown(breaker, clock, pause_s, expected):
    fail(breaker, 9, policy=RATE)  # 9 requests: not enough to judge yet
    clock.now += pause_s
    fail(breaker, 9, policy=RATE, outcome=200)
    fail(breaker, 1, policy=RATE)  # with the old window 10 of 19 failed; in a fresh one 1 of 10
    assert breaker.state(KEY, RATE) == expected


def test_memory_is_bounded_least_recently_used_out(clock):
    breaker = CircuitBreaker(clock, max_keys=2)
    for key in ("a", "b", "c"):
        fail(breaker, 1, key=key)
    assert len(breaker) == 2
    fail(breaker, 2, key="a")  # "a" was evicted, so its run restarted at 1, now 2
    assert breaker.state("a", POLICY) == CLOSED
    fail(breaker, 2, key="c")
    assert breaker.state("c", POLICY) == OPEN


def test_available_filters_open_targets_and_bypasses_when_all_are_open(breaker, clock):
    other = "anthropic|||"
    fail(breaker, 3)
    assert breaker.available([(KEY, POLICY), (other, POLICY), ("x", None)]) == ([1, 2], False)
    fail(breaker, 3, key=other)
    assert breaker.available([(KEY, POLICY), (other, POLICY)]) == ([0, 1], True)
    assert breaker.available([]) == ([], False)
    clock.now += 30
    assert breaker.available([(KEY, POLICY), (other, POLICY)]) == ([0, 1], False)  # both half-open


def test_breaker_key_identifies_the_upstream_not_the_config_position():
    a = Target(json_path="config.targets[0]", provider="openai", custom_host="http://llm/v1", api_key="sk-1")
    b = Target(json_path="config.targets[3]", provider="openai", custom_host="http://llm/v1", api_key="sk-1")
    c = Target(json_path="config.targets[0]", provider="openai", custom_host="http://llm/v1", api_key="sk-2")
    d = Target(json_path="config", provider="openai", override_params={"model": "gpt-4o"})
    assert breaker_key(a) == breaker_key(b)
    assert breaker_key(a) != breaker_key(c)
    assert "sk-1" not in breaker_key(a)
    assert breaker_key(d) == "openai||gpt-4o|"
    assert breaker_key(Target(json_path="config")) == "|||"
