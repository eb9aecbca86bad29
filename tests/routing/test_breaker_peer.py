"""Breakers of several processes as one, through a BreakerPeer: here an in-memory hub that behaves like
cluster/breaker.py's Redis (announcements delivered, one trial granted per cooldown), under a fake clock."""

from __future__ import annotations

from sluicegate.config.model import BreakerPolicy
from sluicegate.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker

POLICY = BreakerPolicy(failure_threshold=3, cooldown_ms=10_000)
KEY = "openai|http://llm/v1||"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


class Hub:
    """What Redis holds (opened_at, trial_at per key) and the replicas it announces to."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.opened: dict[str, float] = {}
        self.trial: dict[str, float] = {}
        self.members: list[CircuitBreaker] = []
        self.claims: list[str] = []

    def join(self) -> CircuitBreaker:
        hub = self

        class Peer:
            def opened(self, key: str, cooldown_s: float) -> None:
                hub.opened[key] = hub.clock.now
                hub.trial.pop(key, None)
                for other in hub.members:
                    if other is not me:
                        other.remote_opened(key, 0.0)

            def closed(self, key: str) -> None:
                hub.opened.pop(key, None)
                for other in hub.members:
                    if other is not me:
                        other.remote_closed(key)

            def claim(self, key: str, cooldown_s: float) -> None:
                hub.claims.append(key)
                taken = key in hub.trial and hub.clock.now - hub.trial[key] < cooldown_s
                if not taken:
                    hub.trial[key] = hub.clock.now
                me.trial_answer(key, not taken)

        me = CircuitBreaker(self.clock, peer=Peer())
        self.members.append(me)
        return me


def test_a_circuit_opened_by_one_replica_is_open_on_the_others() -> None:
    clock = Clock()
    hub = Hub(clock)
    a, b, c = hub.join(), hub.join(), hub.join()
    for _ in range(3):
        a.record(KEY, POLICY, 500)
    assert [r.state(KEY, POLICY) for r in (a, b, c)] == [OPEN] * 3
    assert not b.allow(KEY, POLICY) and not c.admits(KEY, POLICY)
    clock.now += 10
    assert [r.state(KEY, POLICY) for r in (a, b, c)] == [HALF_OPEN] * 3


def test_one_trial_across_replicas_and_its_success_closes_everywhere() -> None:
    clock = Clock()
    hub = Hub(clock)
    a, b, c = hub.join(), hub.join(), hub.join()
    for _ in range(3):
        b.record(KEY, POLICY, 503)
    clock.now += 10
    # The first call on each replica asks the hub; only the first asker is granted.
    assert [r.allow(KEY, POLICY) for r in (c, a, b)] == [False, False, False]
    assert [r.allow(KEY, POLICY) for r in (c, a, b)] == [True, False, False]
    assert not c.allow(KEY, POLICY)  # the grant is spent on one request
    c.record(KEY, POLICY, 200)
    assert [r.state(KEY, POLICY) for r in (a, b, c)] == [CLOSED] * 3
    assert all(r.allow(KEY, POLICY) for r in (a, b, c))


def test_a_failed_trial_reopens_everywhere_for_another_cooldown() -> None:
    clock = Clock()
    hub = Hub(clock)
    a, b = hub.join(), hub.join()
    for _ in range(3):
        a.record(KEY, POLICY, 500)
    clock.now += 10
    b.allow(KEY, POLICY)
    assert b.allow(KEY, POLICY)
    clock.now += 1
    b.record(KEY, POLICY, 500)
    assert a.state(KEY, POLICY) == OPEN and b.state(KEY, POLICY) == OPEN
    clock.now += 9.5
    assert a.state(KEY, POLICY) == OPEN  # the cooldown counts from the reopening, not the first opening
    clock.now += 0.5
    assert a.state(KEY, POLICY) == HALF_OPEN


def test_a_closed_circuit_never_asks_the_peer() -> None:
    clock = Clock()
    hub = Hub(clock)
    a = hub.join()
    for _ in range(1000):
        assert a.allow(KEY, POLICY)
        a.record(KEY, POLICY, 200 if _ % 2 else 500)  # failures below the threshold: never opens
    assert hub.claims == [] and hub.opened == {}


def test_a_trial_refused_is_not_asked_again_before_a_cooldown() -> None:
    clock = Clock()
    hub = Hub(clock)
    a, b = hub.join(), hub.join()
    for _ in range(3):
        a.record(KEY, POLICY, 500)
    clock.now += 10
    a.allow(KEY, POLICY)  # a takes the trial (granted) ...
    assert a.allow(KEY, POLICY)
    for _ in range(50):
        assert not b.allow(KEY, POLICY)  # ... b is refused once, then waits without asking
    assert hub.claims == [KEY, KEY]


def test_a_grant_left_unused_for_a_cooldown_lapses() -> None:
    clock = Clock()
    hub = Hub(clock)
    a = hub.join()
    for _ in range(3):
        a.record(KEY, POLICY, 500)
    clock.now += 10
    assert not a.allow(KEY, POLICY) and a.admits(KEY, POLICY)  # granted
    clock.now += 10  # no traffic came: Redis has let the slot go by now
    assert not a.admits(KEY, POLICY)  # so it asks again (and is granted again: nobody else took it)
    assert a.allow(KEY, POLICY)
    assert hub.claims == [KEY, KEY]
