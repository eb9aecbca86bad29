"""Circuit breaker (hosted ``cb_config``): stop sending to a target that keeps failing, probe it later.

States per target key: CLOSED (traffic flows) → OPEN after ``failure_threshold`` consecutive failures,
or when more than ``failure_threshold_percentage`` of at least ``minimum_requests`` recent requests
failed → after ``cooldown_ms``, HALF_OPEN: exactly one trial request is let through; its success closes
the circuit, its failure opens it for another cooldown. Hosted closes outright after the cooldown; the
single trial is gentler on an upstream that is still down.

State lives on a ``CircuitBreaker`` instance the app owns; time comes from the injected clock (monotonic
seconds) or an explicit ``now``. Memory is bounded: only keys with failures are kept, least recently
used first out.

Replicas share their circuits through an optional ``BreakerPeer`` (cluster/breaker.py, over Redis): a
circuit this process opens or closes is announced to it, news from other processes arrives through the
``remote_*`` methods, and a HALF_OPEN circuit lets its trial through only once the peer has granted it
(one trial across all replicas). The peer does its I/O in the background, so a closed circuit costs
exactly what it costs without one: a dictionary lookup.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from sluicegate.config.model import BreakerPolicy, Target

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
Outcome = bool | int | None  # True: success, False: failure, int: HTTP status, None: no response


def breaker_key(target: Target) -> str:
    """Identity of the upstream a target reaches: provider, host, model and a digest of the key.

    The jsonpath is left out on purpose: the same upstream used by two configs is one health state.
    The api key is hashed so two keys of one provider (spread for rate limits) are judged apart without
    the secret becoming a dictionary key. Pass the effective target (after request-header overrides).
    """
    model = target.override_params.get("model")
    digest = hashlib.sha256(target.api_key.encode()).hexdigest()[:16] if target.api_key else ""
    parts = (target.provider or "", target.custom_host or "", "" if model is None else str(model), digest)
    return "|".join(parts)


def key_labels(key: str) -> tuple[str, str, str]:
    """(provider, host, model) of a ``breaker_key``: what may be shown of it (the key digest is left out)."""
    provider, _, rest = key.partition("|")
    host, _, rest = rest.partition("|")
    return provider, host, rest.rpartition("|")[0]


def is_failure(policy: BreakerPolicy, outcome: Outcome) -> bool:
    if isinstance(outcome, bool):
        return not outcome
    if outcome is None:
        return True
    if policy.failure_status_codes is not None:
        return outcome in policy.failure_status_codes
    return outcome >= 500 or outcome == 429


class Candidates(NamedTuple):
    indices: list[int]  # in the caller's order
    bypassed: bool  # every candidate was open, so all are returned (hosted): attempt without allow()


class BreakerPeer(Protocol):
    """The other replicas' side of the circuits. Never blocks: answers come back later, through
    ``CircuitBreaker.remote_opened``, ``remote_closed`` and ``trial_answer``."""

    def opened(self, key: str, cooldown_s: float) -> None: ...

    def closed(self, key: str) -> None: ...

    def claim(self, key: str, cooldown_s: float) -> None: ...


class _Circuit:
    __slots__ = ("consecutive", "failures", "granted", "opened_at", "requests", "trial_at", "window_start")

    def __init__(self, now: float) -> None:
        self.consecutive = 0
        self.requests = 0
        self.failures = 0
        self.window_start = now
        self.opened_at: float | None = None
        self.trial_at: float | None = None
        self.granted: float | None = None  # when the peer granted this process the cluster's one trial


class CircuitBreaker:
    def __init__(self, clock: Callable[[], float], *, max_keys: int = 10_000, peer: BreakerPeer | None = None) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._circuits: OrderedDict[str, _Circuit] = OrderedDict()
        self._peer = peer

    def state(self, key: str, policy: BreakerPolicy | None, now: float | None = None) -> str:
        circuit = self._circuits.get(key)
        if policy is None or circuit is None or circuit.opened_at is None:
            return CLOSED
        now = self._clock() if now is None else now
        return OPEN if now - circuit.opened_at < policy.cooldown_ms / 1000 else HALF_OPEN

    def admits(self, key: str, policy: BreakerPolicy | None, now: float | None = None) -> bool:
        """Would ``allow`` say yes right now? (A peek: takes no trial slot.)"""
        now = self._clock() if now is None else now
        state = self.state(key, policy, now)
        if state != HALF_OPEN:
            return state == CLOSED
        assert policy is not None  # only a circuit with a policy is ever half-open
        circuit = self._circuits[key]
        if self._peer is None:
            return self._trial_free(circuit, policy, now)
        if circuit.granted is not None and now - circuit.granted < policy.cooldown_ms / 1000:
            return True  # unused for a cooldown, the grant has lapsed in Redis too: ask again
        if self._trial_free(circuit, policy, now):
            self._peer.claim(key, policy.cooldown_ms / 1000)  # ask the cluster; a later call may get it
        return False

    def allow(self, key: str, policy: BreakerPolicy | None, now: float | None = None) -> bool:
        """Gate one attempt. In HALF_OPEN the first caller gets the trial and everyone else waits."""
        now = self._clock() if now is None else now
        if not self.admits(key, policy, now):
            return False
        circuit = self._circuits.get(key)
        if circuit is not None and circuit.opened_at is not None:
            circuit.trial_at = now
            circuit.granted = None
            self._circuits.move_to_end(key)
        return True

    def record(
        self, key: str, policy: BreakerPolicy | None, outcome: Outcome, now: float | None = None
    ) -> None:
        """Account an attempt's outcome (after its retries: what the strategy saw)."""
        if policy is None:
            return
        now = self._clock() if now is None else now
        failed = is_failure(policy, outcome)
        state = self.state(key, policy, now)
        if state == OPEN:
            return  # a straggler admitted before the circuit opened: its news is already known
        if state == HALF_OPEN:
            if failed:
                self._open(self._circuits[key], now)
                self._announce_open(key, policy)
            else:
                del self._circuits[key]  # closed with clean counters is the same as no entry
                if self._peer is not None:
                    self._peer.closed(key)
            return
        self._count(key, policy, failed, now)

    def available(
        self, candidates: Sequence[tuple[str, BreakerPolicy | None]], now: float | None = None
    ) -> Candidates:
        """The candidates a strategy may use now; all of them when none is admitted (hosted bypass)."""
        now = self._clock() if now is None else now
        admitted = [i for i, (key, policy) in enumerate(candidates) if self.admits(key, policy, now)]
        if admitted or not candidates:
            return Candidates(admitted, False)
        return Candidates(list(range(len(candidates))), True)

    def __len__(self) -> int:
        return len(self._circuits)

    # -- news from the other replicas (the peer calls these) -----------------------------------------

    def remote_opened(self, key: str, age_s: float, now: float | None = None) -> None:
        """Another process opened ``key`` ``age_s`` ago; the most recent opening wins."""
        now = self._clock() if now is None else now
        opened_at = now - max(0.0, age_s)
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit(now)
            self._evict()
        if circuit.opened_at is None or opened_at > circuit.opened_at:
            self._open(circuit, opened_at)
        self._circuits.move_to_end(key)

    def remote_closed(self, key: str) -> None:
        """Another process's trial succeeded: the circuit is closed everywhere."""
        circuit = self._circuits.get(key)
        if circuit is not None and circuit.opened_at is not None:
            del self._circuits[key]

    def trial_answer(self, key: str, granted: bool, now: float | None = None) -> None:
        """The peer's answer to ``claim``: the trial is this process's, or another's (wait a cooldown)."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.opened_at is None:
            return
        now = self._clock() if now is None else now
        if granted:
            circuit.granted = now
        else:
            circuit.trial_at = now

    def _announce_open(self, key: str, policy: BreakerPolicy) -> None:
        if self._peer is not None:
            self._peer.opened(key, policy.cooldown_ms / 1000)

    def _count(self, key: str, policy: BreakerPolicy, failed: bool, now: float) -> None:
        circuit = self._circuits.get(key)
        if circuit is None:
            if not failed and policy.failure_threshold_percentage is None:
                return  # nothing to remember about a healthy target (a rate needs its successes)
            circuit = self._circuits[key] = _Circuit(now)
            self._evict()
        self._circuits.move_to_end(key)
        # The rate is judged over a tumbling window as long as the cooldown, so old failures fade.
        if now - circuit.window_start > policy.cooldown_ms / 1000:
            circuit.requests = circuit.failures = 0
            circuit.window_start = now
        circuit.requests += 1
        circuit.failures += failed
        circuit.consecutive = circuit.consecutive + 1 if failed else 0
        if self._should_open(circuit, policy):
            self._open(circuit, now)
            self._announce_open(key, policy)
        elif not failed and policy.failure_threshold_percentage is None:
            del self._circuits[key]  # a success wipes the only thing kept (the run of failures)

    @staticmethod
    def _should_open(circuit: _Circuit, policy: BreakerPolicy) -> bool:
        if policy.failure_threshold is not None and circuit.consecutive >= policy.failure_threshold:
            return True
        percentage = policy.failure_threshold_percentage
        if percentage is None or circuit.requests < policy.minimum_requests:
            return False
        return circuit.failures * 100 > percentage * circuit.requests

    @staticmethod
    def _open(circuit: _Circuit, now: float) -> None:
        circuit.opened_at = now
        circuit.trial_at = None
        circuit.granted = None
        circuit.consecutive = circuit.requests = circuit.failures = 0
        circuit.window_start = now

    @staticmethod
    def _trial_free(circuit: _Circuit, policy: BreakerPolicy, now: float) -> bool:
        # A trial whose result never came back (cancelled request) must not block the key forever.
        return circuit.trial_at is None or now - circuit.trial_at >= policy.cooldown_ms / 1000

    def _evict(self) -> None:
        while len(self._circuits) > self._max_keys:
            self._circuits.popitem(last=False)
