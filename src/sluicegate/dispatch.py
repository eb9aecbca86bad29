"""The attempt loop: walk the config tree, retry and fall back, and return what the client gets.

Strategies (fallback, loadbalance, conditional, single), retry timing and the circuit breaker are pure
decisions in ``routing/``; this module owns the I/O around them: it prepares each target, sends it
(``upstream/exchange.py``), sleeps between retries (injected, so tests run in milliseconds) and records
every attempt for the request log. Before each attempt, the limits of the attempt's catalog provider are
checked (``limits/attempts.py``): a refusal is a failed attempt that sent nothing (429 or 412), which a
fallback passes over like an upstream's 429 and a loadbalance answers by choosing among the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import orjson
from multidict import CIMultiDict

from .config.model import Group, Node, Target
from .errors import GatewayError, UpstreamFailure
from .limits.attempts import AttemptLimits, release, settle_with_request
from .prepare import RequestBuilder
from .routing import CircuitBreaker, breaker_key, choose_conditional, pick_weighted, retry_delay, should_fallback
from .routing.least_busy import Choice, Load, choose_least_busy
from .routing.load import LoadBoard
from .telemetry.redact import Secrets, scrub, scrub_bytes, scrub_list, sent_secrets
from .types import AttemptRecord, Call, OpenStream, Outcome, Prepared, routing_metadata
from .upstream.exchange import DEFAULT_MAX_BODY_BYTES, exchange, failure
from .upstream.transport import Transport

__all__ = ["AttemptRecord", "Call", "Dispatcher"]  # the first two live in types.py; re-exported


# Its own __init__: a dataclass's generated one stays interpreted when compiled (types.py, RequestContext).
@dataclass(slots=True, init=False)
class Walk:
    """One request's walk through the tree: the attempts made so far."""

    call: Call
    attempts: list[AttemptRecord] = field(default_factory=list)
    route: dict[str, Any] | None = None  # why the last least-busy choice was made, for the next attempt

    def __init__(self, call: Call, attempts: list[AttemptRecord] | None = None,
                 route: dict[str, Any] | None = None) -> None:
        self.call = call
        self.attempts = [] if attempts is None else attempts
        self.route = route


class Dispatcher:
    def __init__(
        self,
        transport: Transport,
        builder: RequestBuilder,
        *,
        breaker: CircuitBreaker | None = None,
        board: LoadBoard | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        backoff_scale: float = 1.0,
        max_response_bytes: int = DEFAULT_MAX_BODY_BYTES,
        limits: AttemptLimits | None = None,
    ) -> None:
        self._transport = transport
        self._builder = builder
        # "is None", not "or": both have a length, so an empty one given by the caller is falsy.
        self._breaker = breaker if breaker is not None else CircuitBreaker(time.monotonic)
        # least-busy's figures: the attempts feed it here, the probe task (upstream/probes.py) off the request path
        self.board = board if board is not None else LoadBoard(time.monotonic)
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock  # Retry-After dates are compared with it
        self._backoff_scale = backoff_scale
        self._max_response_bytes = max_response_bytes
        self._limits = limits

    async def run(self, call: Call, root: Node) -> tuple[Outcome, list[AttemptRecord]]:
        state = Walk(call)
        outcome = await self._run_node(root, state, gated=True)
        return outcome, state.attempts

    # -- the tree ----------------------------------------------------------------------------------

    def _run_node(self, node: Node, state: Walk, *, gated: bool, tracked: bool = False) -> Awaitable[Outcome]:
        """The coroutine that runs ``node``: returned for the caller to await, not awaited here, so the walk
        to a target adds no frame of its own to the request's (every suspension passes through each)."""
        if isinstance(node, Target):
            return self._run_target(node, state, gated=gated, tracked=tracked)
        mode = node.strategy.mode
        if mode == "fallback":
            return self._fallback(node, state)
        if mode == "loadbalance":
            return self._balance(node, state)
        if mode == "conditional":
            index = self._pick_conditional(node, state.call)
        else:
            index = 0
        return self._run_node(node.children[index], state, gated=gated)

    async def _fallback(self, group: Group, state: Walk) -> Outcome:
        indices, gated = self._admitted(group, state.call)
        outcome: Outcome | None = None
        for index in indices:
            if outcome is not None:
                outcome.discard()
            outcome = await self._run_node(group.children[index], state, gated=gated)
            if outcome.ok or outcome.gateway_exception:
                return outcome
            if not should_fallback(group.strategy, outcome.verdict_status):
                return outcome
        assert outcome is not None  # a group always has children (the schema says so)
        return outcome

    async def _balance(self, group: Group, state: Walk) -> Outcome:
        """One child by weight (or least busy); a child whose provider limits refused is left out and the
        choice made again among the rest, so traffic goes where the limits still admit it."""
        least_busy = group.strategy.policy == "least-busy"
        refused: set[int] = set()
        outcome: Outcome | None = None
        while True:
            indices, gated = self._admitted(group, state.call)
            left = [i for i in indices if i not in refused] if refused else indices
            if not left:
                assert outcome is not None  # only children refused by their limits are left out
                return outcome
            if least_busy:
                index = self._pick_least_busy(group, state, left)
            else:
                index = self._pick_balanced(group, left)
            outcome = await self._run_node(group.children[index], state, gated=gated, tracked=least_busy)
            if not outcome.limited:
                return outcome
            refused.add(index)

    def _pick_balanced(self, group: Group, indices: list[int]) -> int:
        weights = [group.children[i].weight for i in indices]
        choice = pick_weighted(weights, self._rng())
        return indices[0] if choice is None else indices[choice]

    def _pick_least_busy(self, group: Group, state: Walk, indices: list[int]) -> int:
        """Power of two choices among the healthy children (docs/routing.md); all given ones when none is."""
        keys = [self._load_key(group.children[i], state.call) for i in indices]
        now = self.board.clock()
        healthy = [n for n, key in enumerate(keys) if key is None or self.board.healthy(key, now)]
        pool = healthy or list(range(len(indices)))
        loads = [Load() if key is None else self.board.load(key, now) for key in (keys[n] for n in pool)]
        choice = choose_least_busy([group.children[indices[n]].weight for n in pool], loads, self._rng)
        if choice is None:
            state.route = None
            return indices[0]
        chosen = indices[pool[choice.index]]
        state.route = _route_note(group, [indices[n] for n in pool], loads, choice,
                                  unhealthy=len(indices) - len(healthy))
        return chosen

    def _load_key(self, child: Node, call: Call) -> str | None:
        return self._breaker_key(child, call) if isinstance(child, Target) else None

    def _pick_conditional(self, group: Group, call: Call) -> int:
        return choose_conditional(
            group.strategy,
            [child.name for child in group.children],
            metadata=routing_metadata(call.ctx, call.json),
            params=call.json or {},
            pathname=call.pathname,
        )

    def _admitted(self, group: Group, call: Call) -> tuple[list[int], bool]:
        """Children a strategy may use now (open circuits left out); all of them, ungated, if none is."""
        candidates = [
            (self._breaker_key(child, call), child.breaker) if isinstance(child, Target) else ("", None)
            for child in group.children
        ]
        if not any(policy for _, policy in candidates):
            return list(range(len(candidates))), True
        admitted = self._breaker.available(candidates)
        return admitted.indices, not admitted.bypassed

    @staticmethod
    def _breaker_key(target: Target, call: Call) -> str:
        # The request's custom host replaces the target's, so health is tracked for where traffic goes.
        if call.ctx.custom_host:
            target = replace(target, custom_host=call.ctx.custom_host)
        return breaker_key(target)

    # -- one target, with its retries ------------------------------------------------------------

    async def _run_target(self, target: Target, state: Walk, *, gated: bool, tracked: bool = False) -> Outcome:
        prepared = self._builder.build(target, state.call)
        # One identity for both: the breaker's state and least-busy's figures are kept per upstream.
        key = self._breaker_key(target, state.call) if target.breaker or tracked else ""
        if gated and target.breaker and not self._breaker.allow(key, target.breaker):
            message = f"{prepared.host} is failing; its circuit breaker is open"
            return failure(UpstreamFailure(message, status=503, provider=prepared.provider), target.json_path)
        outcome = await self._with_retries(prepared, target, state, key if tracked else None)
        if target.breaker and not outcome.limited:  # nothing was sent: no verdict on the upstream
            self._breaker.record(key, target.breaker, outcome.status if outcome.responded else None)
        return outcome

    async def _with_retries(self, prepared: Prepared, target: Target, state: Walk,
                            load_key: str | None) -> Outcome:
        retries, waited = 0, 0.0
        while True:
            outcome = await self._attempt(prepared, target, state, retries, load_key)
            if outcome.ok or target.retry is None or outcome.limited:
                break  # a limit's refusal is not retried: the same target would be refused again
            status = outcome.verdict_status
            delay = retry_delay(target.retry, retries, status, CIMultiDict(outcome.headers), waited,
                                now_epoch_s=self._wall_clock(), backoff_scale=self._backoff_scale)
            if delay is None:
                if target.retry.attempts and (status is None or status in target.retry.on_status_codes):
                    retries = -1  # every attempt spent on a retryable failure (Portkey reports -1)
                break
            outcome.discard()
            await self._sleep(delay)
            waited += delay
            retries += 1
        outcome.retries = retries
        return outcome

    async def _attempt(self, prepared: Prepared, target: Target, state: Walk, retry: int,
                       load_key: str | None) -> Outcome:
        route, state.route = state.route, None
        ticket = None
        if self._limits is not None and (subject := self._limits.subject(prepared.provider, state.call)):
            admitted = await self._limits.admit(subject, state.call, _model_of(target))
            if isinstance(admitted, GatewayError):
                return self._refused(admitted, prepared, target, state, retry, route)
            ticket = admitted
        started = self._clock()
        sharing = self.board.started(load_key, prepared.host) if load_key is not None else 0
        try:
            outcome = await exchange(self._transport, prepared, target.json_path,
                                     max_body_bytes=self._max_response_bytes,
                                     scrub_errors=partial(_scrubbed_echo, prepared, state.call))
        except BaseException:
            if load_key is not None:  # refused by the guard, or the client left: no verdict on the target
                self.board.finished(load_key, ok=None, ttft_ms=None, latency_ms=None)
            if ticket is not None:
                release(ticket)
            raise
        if not outcome.ok and outcome.body:
            _scrub_echoes(outcome, prepared, state.call)
        if ticket is not None:
            # Only an answer is the request's answer: its usage settles the ticket, as the request's own.
            if outcome.ok:
                settle_with_request(state.call, ticket)
            else:
                release(ticket)
        if load_key is not None:
            self._track(load_key, outcome, (self._clock() - started) * 1000.0, started, sharing)
        state.attempts.append(
            AttemptRecord(
                target_path=target.json_path,
                provider=prepared.provider,
                host=prepared.host,
                status=outcome.status,
                latency_ms=(self._clock() - started) * 1000.0,
                retry=retry,
                error=_error_text(outcome),
                sent=prepared,
                routing=route,
            )
        )
        return outcome

    def _refused(self, refusal: GatewayError, prepared: Prepared, target: Target, state: Walk, retry: int,
                 route: dict[str, Any] | None) -> Outcome:
        """A refusal by the attempt's provider limits, as a failed attempt: the gateway's envelope and
        headers (Retry-After, x-ratelimit-*) the client gets if no other target serves; nothing sent."""
        headers = [*getattr(refusal, "headers", {}).items(), ("content-type", "application/json")]
        outcome = Outcome(refusal.status, headers, orjson.dumps(refusal.body()), prepared.provider,
                          target.json_path, limited=True)
        state.attempts.append(AttemptRecord(target_path=target.json_path, provider=prepared.provider,
                                            host=prepared.host, status=refusal.status, latency_ms=0.0,
                                            retry=retry, error=f"not sent: {refusal.message}", routing=route))
        return outcome

    def _track(self, key: str, outcome: Outcome, head_ms: float, started: float, sharing: int) -> None:
        """Account an attempt on the board: now, or when its stream ends (it is in flight until then)."""
        if outcome.stream is None:
            self.board.finished(key, ok=not target_failed(outcome), ttft_ms=head_ms, latency_ms=head_ms,
                                sharing=sharing)
            return
        outcome.stream = OpenStream(
            _TrackedBody(outcome.stream.body, self.board, key, (head_ms, started, sharing), self._clock),
            outcome.stream.decoder)


def _scrub_echoes(outcome: Outcome, prepared: Prepared, call: Call) -> None:
    """An error answer with every credential the gateway sent and the client did not (a catalog provider's,
    say) replaced, in its body and its headers: an upstream that echoes its request in an error (a debug
    server, a proxy's page) would otherwise hand the client a credential it never sees. What the client
    sent itself it may see again. Errors only: their bodies are small, and a success that echoes its
    request's credentials is not an answer a server gives."""
    secrets = _echo_secrets(prepared, call)
    if not secrets or outcome.body is None:
        return
    outcome.body = scrub_bytes(outcome.body, secrets)
    outcome.headers = [(name, scrub(value, secrets) or value) for name, value in outcome.headers]


def _scrubbed_echo(prepared: Prepared, call: Call, data: bytes) -> bytes:
    """The bytes of a stream that hold an upstream's error event after the stream started, scrubbed as an error
    answer is (``_scrub_echoes``). The stream decoders call it only for those (exchange.py), so the secrets are
    worked out only then: most streams carry no error."""
    return scrub_bytes(data, _echo_secrets(prepared, call))


def _echo_secrets(prepared: Prepared, call: Call) -> Secrets:
    """Every credential the gateway sent that the client did not, in every form an echo may carry it."""
    known = "\n".join([call.url_tail, *call.ctx.headers.values()])
    return scrub_list(value for value in sent_secrets(prepared.headers, prepared.url) if value not in known)


def _model_of(target: Target) -> str | None:
    model = target.override_params.get("model")
    return model if isinstance(model, str) else None


def target_failed(outcome: Outcome) -> bool:
    """Does this outcome count against the target? No answer, a 5xx or a 429 (a 4xx is the request's fault)."""
    return not outcome.responded or outcome.status >= 500 or outcome.status == 429


class _TrackedBody:
    """An open stream's body that tells the load board when the stream ends (it is in flight until then)."""

    __slots__ = ("_board", "_body", "_clock", "_done", "_head_ms", "_key", "_sharing", "_started")

    def __init__(self, body: Any, board: LoadBoard, key: str, timing: tuple[float, float, int],
                 clock: Callable[[], float]) -> None:
        self._body, self._board, self._key, self._clock = body, board, key, clock
        self._head_ms, self._started, self._sharing = timing
        self._done = False

    async def read_chunk(self) -> bytes:
        try:
            chunk: bytes = await self._body.read_chunk()
        except Exception:
            self._finish(ok=False, complete=False)
            raise
        if not chunk:
            self._finish(ok=True, complete=True)
        return chunk

    def close(self) -> None:
        self._finish(ok=None, complete=False)  # the client left, or the outcome was dropped: no verdict
        self._body.close()

    def _finish(self, *, ok: bool | None, complete: bool) -> None:
        if self._done:
            return
        self._done = True
        latency = (self._clock() - self._started) * 1000.0 if complete else None
        self._board.finished(self._key, ok=ok, ttft_ms=self._head_ms, latency_ms=latency, sharing=self._sharing)


def _route_note(group: Group, children: list[int], loads: list[Load], choice: Choice, *,
                unhealthy: int) -> dict[str, Any]:
    """Why least-busy chose what it chose, for the request log (attempts' ``routing``)."""
    compared = []
    for n, the_score in zip(choice.compared, choice.scores, strict=True):
        load = loads[n]
        compared.append({
            "target": group.children[children[n]].json_path,
            "score": round(the_score, 3),
            "in_flight": load.in_flight,
            "server_queue": load.server_queue,
            "ttft_ms": None if load.ttft_ms is None else round(load.ttft_ms, 1),
            "latency_ms": None if load.latency_ms is None else round(load.latency_ms, 1),
            "evidence": round(load.evidence, 3),  # the weight left on those two (routing/load.py)
            "failures": load.failures,
        })
    return {"policy": "least-busy", "chosen": group.children[children[choice.index]].json_path,
            "reason": choice.reason, "compared": compared, "unhealthy_skipped": unhealthy}


def _error_text(outcome: Outcome) -> str | None:
    if outcome.ok or outcome.stream is not None or not outcome.body:
        return None
    return outcome.body[:512].decode("utf-8", "replace")
