"""What the gateway knows about each least-busy target: in flight, EWMAs, failures, the server's own report
and its health probe. One ``LoadBoard`` per process, owned by the app; the dispatcher feeds it on the request
path (counter updates only), the probe task (``upstream/probes.py``) off it.

Health, for a least-busy group (docs/routing.md):
- a target whose probe failed ``unhealthy_after`` times in a row leaves rotation; ``healthy_after`` passing
  probes in a row bring it back. A target never probed is healthy.
- shared: with Redis, the other processes' in-flight counts arrive through ``shared`` and add to ours while
  fresh (``stale_s``), so every worker and replica sees the whole queue.
- passive: after ``eject_after`` consecutive failed requests a target leaves rotation for ``eject_s``;
  then one request may try it again (its failure ejects it anew for twice as long, its success clears the
  run), and a passing probe clears the run at once when the probe is what brought it back.
- ageing: a target's latency and TTFT EWMAs change only when a request goes there, so their weight (the
  ``evidence`` of its Load) halves every ``half_life_s`` without a new sample, and after
  ``FORGET_AFTER_HALF_LIVES`` the figures are dropped: the target is scored like a new one, shares the next
  requests by the tie-break, and its next answer measures it afresh. The next sample's EWMA weight grows the
  same way (a sample after a long silence mostly replaces the old figure). The failure run and rate age on the
  same clock from the last failure (ejection does not: it keeps out a target that goes on failing). Probes do
  not feed these figures:
  ``GET /models`` answers from the HTTP front of a server whatever its model is doing, so its time says
  nothing about what a request costs there; probes only gate rotation.
Time comes from the injected clock (monotonic seconds). Memory is bounded: least recently used keys go first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .least_busy import Load
from .server_load import ServerLoad

MAX_EJECT_DOUBLINGS = 6
# Latency evidence older than this many half-lives (weight below 1/16) is dropped: scored as unmeasured.
FORGET_AFTER_HALF_LIVES = 4.0


@dataclass(frozen=True, slots=True)
class BoardPolicy:
    alpha: float = 0.3  # EWMA weight of the newest sample (when the last one is fresh)
    # Latency evidence loses half its weight every this many seconds without a new sample, and is dropped
    # after four (8 s): on the scale the board already calls a server report stale (three probe intervals,
    # 6 s by default) and a few LLM requests long, so a target that answered slowly once is tried again within
    # about 8 s at light load, while one that stays slow costs about one slow request per 8 s.
    half_life_s: float = 2.0
    stale_s: float = 6.0  # a server report older than this is ignored (in-flight counts stand alone)
    eject_after: int = 3  # consecutive failed requests that take a target out of rotation
    eject_s: float = 2.0  # for this long, then one request may try it again
    unhealthy_after: int = 1  # consecutive failed probes that take it out
    healthy_after: int = 1  # consecutive passing probes that bring it back


@dataclass(slots=True)
class TargetState:
    base_url: str  # the checked base URL requests went to (probes go there and nowhere else)
    in_flight: int = 0
    ttft_ms: float | None = None
    latency_ms: float | None = None
    sampled_at: float | None = None  # when ttft_ms / latency_ms last took a sample
    error_rate: float = 0.0
    failures: int = 0
    last_failure_at: float | None = None
    requests: int = 0
    server: ServerLoad | None = None
    server_at: float | None = None
    others: int = 0  # in flight there from the other workers and replicas (upstream/shared_load.py)
    others_at: float | None = None
    probe_healthy: bool = True
    probe_passes: int = 0
    probe_fails: int = 0
    probe_error: str | None = None


@dataclass(frozen=True, slots=True)
class TargetView:
    """One target for /metrics and the probe task."""

    key: str
    base_url: str
    in_flight: int
    server_queue: float | None
    cache_usage: float | None
    healthy: bool
    requests: int


class LoadBoard:
    def __init__(self, clock: Callable[[], float], policy: BoardPolicy | None = None, *,
                 max_keys: int = 10_000) -> None:
        self.clock = clock
        self.policy = policy or BoardPolicy()
        self._max_keys = max_keys
        self._targets: OrderedDict[str, TargetState] = OrderedDict()

    # -- the request path -------------------------------------------------------------------------------

    def load(self, key: str, now: float | None = None) -> Load:
        state = self._targets.get(key)
        if state is None:
            return Load()
        now = self.clock() if now is None else now
        at = state.server_at
        server = state.server if at is not None and now - at <= self.policy.stale_s else None
        shared_at = state.others_at
        others = state.others if shared_at is not None and now - shared_at <= self.policy.stale_s else 0
        evidence = self._evidence(state, now)
        known = evidence > 0.0
        # Failures age the same way: they too change only when a request goes there, and one 502 scored a
        # target ~30 times worse for ever (ejection and probes still keep out one that goes on failing).
        fault = self._weight(state.last_failure_at, now)
        return Load(in_flight=state.in_flight + others, ttft_ms=state.ttft_ms if known else None,
                    latency_ms=state.latency_ms if known else None, evidence=evidence if known else 1.0,
                    failures=state.failures if fault > 0.0 else 0, error_rate=state.error_rate * fault,
                    server_queue=server.queue if server is not None else None,
                    cache_usage=server.cache_usage if server is not None else None)

    def _evidence(self, state: TargetState, now: float) -> float:
        """The weight left on a target's latency figures: 1 when just sampled, halving every half-life, 0 once
        dropped (or never sampled: then there are no figures)."""
        return self._weight(state.sampled_at, now)

    def _weight(self, since: float | None, now: float) -> float:
        """The weight left on evidence taken at ``since``: 1 then, halving every half-life, 0 once dropped
        (or never taken)."""
        if since is None:
            return 0.0
        half_life = self.policy.half_life_s
        if half_life <= 0:
            return 1.0  # ageing off
        halvings = max(0.0, now - since) / half_life
        if halvings >= FORGET_AFTER_HALF_LIVES:
            return 0.0
        return float(0.5 ** halvings)

    def healthy(self, key: str, now: float | None = None) -> bool:
        state = self._targets.get(key)
        if state is None:
            return True
        if not state.probe_healthy:
            return False
        if state.failures < self.policy.eject_after or state.last_failure_at is None:
            return True
        now = self.clock() if now is None else now
        # Each failed retry doubles the pause (at most 64 times): a target that answers only errors while its
        # probe still passes gets one request per pause, fewer and fewer.
        pause = self.policy.eject_s * 2.0 ** min(state.failures - self.policy.eject_after, MAX_EJECT_DOUBLINGS)
        return now - state.last_failure_at >= pause

    def started(self, key: str, base_url: str) -> int:
        """Count a request in flight; returns how many are in flight there now, itself included (pass it back
        to ``finished``)."""
        state = self._targets.get(key)
        if state is None:
            state = self._targets[key] = TargetState(base_url)
            self._evict()
        else:
            state.base_url = base_url
            self._targets.move_to_end(key)
        state.in_flight += 1
        state.requests += 1
        return state.in_flight

    def finished(self, key: str, *, ok: bool | None, ttft_ms: float | None, latency_ms: float | None,
                 sharing: int = 1, now: float | None = None) -> None:
        """One request ended. ``ok`` None: no verdict on the target (the client left, the guard refused):
        only the in-flight count changes. A failure's timings are left out: a fast error says nothing about
        how fast the target answers, and would make it look idle.

        The timings are divided by ``sharing`` (the requests in flight there when it started, itself
        included): what one request costs the target, not how long it queued. A server that answers one
        request at a time took n turns for it; one that batches n at once gave each a 1/n share. Without
        this the queue would count twice, once in the count and once in the latency it made."""
        state = self._targets.get(key)
        if state is None:
            return
        state.in_flight = max(0, state.in_flight - 1)
        if ok is None:
            return
        alpha = self.policy.alpha
        state.error_rate += alpha * ((0.0 if ok else 1.0) - state.error_rate)
        if ok:
            state.failures = 0
            if ttft_ms is None and latency_ms is None:
                return
            now = self.clock() if now is None else now
            # The older the figures, the more the new sample replaces them (time-aware EWMA): with weight w
            # left on the old figures, the sample gets 1 - (1 - alpha) * w; dropped figures are replaced.
            evidence = self._evidence(state, now)
            if evidence <= 0.0:
                state.ttft_ms = state.latency_ms = None
            weight = 1.0 - (1.0 - alpha) * evidence
            share = max(1, sharing)
            state.ttft_ms = _ewma(state.ttft_ms, None if ttft_ms is None else ttft_ms / share, weight)
            state.latency_ms = _ewma(state.latency_ms, None if latency_ms is None else latency_ms / share, weight)
            state.sampled_at = now
        else:
            state.failures += 1
            state.last_failure_at = self.clock() if now is None else now

    # -- the probe task ---------------------------------------------------------------------------------

    def probed(self, key: str, passed: bool, error: str | None = None) -> None:
        state = self._targets.get(key)
        if state is None:
            return
        state.probe_error = None if passed else error
        if passed:
            state.probe_fails = 0
            state.probe_passes += 1
            if not state.probe_healthy and state.probe_passes >= self.policy.healthy_after:
                state.probe_healthy = True
                state.failures = 0  # back in rotation: the old run of failures is history
        else:
            state.probe_passes = 0
            state.probe_fails += 1
            if state.probe_fails >= self.policy.unhealthy_after:
                state.probe_healthy = False

    def reported(self, key: str, load: ServerLoad | None, now: float | None = None) -> None:
        state = self._targets.get(key)
        if state is None or load is None:
            return
        state.server = load
        state.server_at = self.clock() if now is None else now

    def shared(self, key: str, others: int, now: float | None = None) -> None:
        """What the other processes have in flight at this target (a fresh figure adds to our own count)."""
        state = self._targets.get(key)
        if state is None:
            return
        state.others = max(0, others)
        state.others_at = self.clock() if now is None else now

    def views(self, now: float | None = None) -> Iterator[TargetView]:
        now = self.clock() if now is None else now
        for key, state in list(self._targets.items()):
            load = self.load(key, now)
            yield TargetView(key=key, base_url=state.base_url, in_flight=state.in_flight,  # this process's
                             server_queue=load.server_queue, cache_usage=load.cache_usage,
                             healthy=self.healthy(key, now), requests=state.requests)

    def __len__(self) -> int:
        return len(self._targets)

    def _evict(self) -> None:
        while len(self._targets) > self._max_keys:
            self._targets.popitem(last=False)


def _ewma(old: float | None, sample: float | None, alpha: float) -> float | None:
    if sample is None:
        return old
    return sample if old is None else old + alpha * (sample - old)
