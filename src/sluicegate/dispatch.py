"""The attempt loop: walk the config tree, retry and fall back, and return what the client gets.

Strategies (fallback, loadbalance, conditional, single), retry timing and the circuit breaker are pure
decisions in ``routing/``; this module owns the I/O around them: it prepares each target, sends it
(``upstream/exchange.py``), sleeps between retries (injected, so tests run in milliseconds) and records
every attempt for the request log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from multidict import CIMultiDict

from .config.model import Group, Node, Target
from .errors import UpstreamFailure
from .prepare import RequestBuilder
from .routing import CircuitBreaker, breaker_key, choose_conditional, pick_weighted, retry_delay, should_fallback
from .types import AttemptRecord, Call, Outcome, Prepared, routing_metadata
from .upstream.exchange import DEFAULT_MAX_BODY_BYTES, exchange, failure
from .upstream.transport import Transport

__all__ = ["AttemptRecord", "Call", "Dispatcher"]  # the first two live in types.py; re-exported


@dataclass(slots=True)
class Walk:
    """One request's walk through the tree: the attempts made so far."""

    call: Call
    attempts: list[AttemptRecord] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        transport: Transport,
        builder: RequestBuilder,
        *,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        backoff_scale: float = 1.0,
        max_response_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._transport = transport
        self._builder = builder
        self._breaker = breaker if breaker is not None else CircuitBreaker(time.monotonic)  # it has a __len__
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock  # Retry-After dates are compared with it
        self._backoff_scale = backoff_scale
        self._max_response_bytes = max_response_bytes

    async def run(self, call: Call, root: Node) -> tuple[Outcome, list[AttemptRecord]]:
        state = Walk(call)
        outcome = await self._run_node(root, state, gated=True)
        return outcome, state.attempts

    # -- the tree ----------------------------------------------------------------------------------

    async def _run_node(self, node: Node, state: Walk, *, gated: bool) -> Outcome:
        if isinstance(node, Target):
            return await self._run_target(node, state, gated=gated)
        mode = node.strategy.mode
        if mode == "fallback":
            return await self._fallback(node, state)
        if mode == "loadbalance":
            index, gated = self._pick_balanced(node, state.call)
        elif mode == "conditional":
            index = self._pick_conditional(node, state.call)
        else:
            index = 0
        return await self._run_node(node.children[index], state, gated=gated)

    async def _fallback(self, group: Group, state: Walk) -> Outcome:
        indices, gated = self._admitted(group, state.call)
        outcome: Outcome | None = None
        for index in indices:
            if outcome is not None:
                outcome.discard()
            outcome = await self._run_node(group.children[index], state, gated=gated)
            if outcome.ok or outcome.gateway_exception:
                return outcome
            if not should_fallback(group.strategy, outcome.status if outcome.responded else None):
                return outcome
        assert outcome is not None  # a group always has children (the schema says so)
        return outcome

    def _pick_balanced(self, group: Group, call: Call) -> tuple[int, bool]:
        indices, gated = self._admitted(group, call)
        weights = [group.children[i].weight for i in indices]
        choice = pick_weighted(weights, self._rng())
        return (indices[0] if choice is None else indices[choice]), gated

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

    async def _run_target(self, target: Target, state: Walk, *, gated: bool) -> Outcome:
        prepared = self._builder.build(target, state.call)
        key = self._breaker_key(target, state.call) if target.breaker else ""
        if gated and target.breaker and not self._breaker.allow(key, target.breaker):
            message = f"{prepared.host} is failing; its circuit breaker is open"
            return failure(UpstreamFailure(message, status=503, provider=prepared.provider), target.json_path)
        outcome = await self._with_retries(prepared, target, state)
        if target.breaker:
            self._breaker.record(key, target.breaker, outcome.status if outcome.responded else None)
        return outcome

    async def _with_retries(self, prepared: Prepared, target: Target, state: Walk) -> Outcome:
        retries, waited = 0, 0.0
        while True:
            outcome = await self._attempt(prepared, target, state, retries)
            if outcome.ok or target.retry is None:
                break
            status = outcome.status if outcome.responded else None
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

    async def _attempt(self, prepared: Prepared, target: Target, state: Walk, retry: int) -> Outcome:
        started = self._clock()
        outcome = await exchange(self._transport, prepared, target.json_path, max_body_bytes=self._max_response_bytes)
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
            )
        )
        return outcome


def _error_text(outcome: Outcome) -> str | None:
    if outcome.ok or outcome.stream is not None or not outcome.body:
        return None
    return outcome.body[:512].decode("utf-8", "replace")
