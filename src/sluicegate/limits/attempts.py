"""A catalog provider's limits, checked per upstream attempt (the dispatcher calls this).

The limits step (pipeline/limit.py) checks a provider's limits once per request when the request reaches
one provider only. A config spread over several (a fallback from ``@a`` to ``@b``, a loadbalance, a
conditional) learns which one serves only as it walks the tree: each attempt at a provider that has limits
is admitted here against that provider's limits alone, with the same estimate and prices as the step.
A refusal is not raised: the dispatcher turns it into a failed attempt (429 or 412, nothing sent) so the
config's strategy decides, like for an upstream's 429.

A provider without limits costs one dict lookup; a provider the step already admitted is not counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..errors import BudgetExhausted, GatewayError, LimitsUnavailable, TooManyRequests
from ..types import Call
from .checks import Subject
from .limiter import Limiter, Ticket
from .model import Limits

# What an attempt's admission may refuse with: each becomes a failed attempt, never a raised error.
REFUSALS = (TooManyRequests, BudgetExhausted, LimitsUnavailable)


class ProviderFacts(Protocol):
    """Where a provider's limits and prices are read from (the limits step's in-memory snapshot)."""

    def provider_limits(self, slug: str) -> Limits | None: ...

    def price(self, slug: str | None, model: str | None) -> tuple[float, float] | None: ...


class AttemptLimits:
    def __init__(self, limiter: Limiter, facts: ProviderFacts) -> None:
        self._limiter = limiter
        self._facts = facts

    def subject(self, provider: str, call: Call) -> Subject | None:
        """The limits this attempt's provider adds: None for a provider id, a catalog provider without
        limits, or the one the limits step already admitted for this request."""
        if not provider.startswith("@"):
            return None
        slug = provider[1:]
        limits = self._facts.provider_limits(slug)
        if limits is None or slug == call.limited_provider:
            return None
        return Subject("provider", slug, limits)

    async def admit(self, subject: Subject, call: Call, model: str | None) -> Ticket | GatewayError | None:
        """The attempt's ticket (None: nothing to count, or the store is down and limits fail open), or
        the refusal the client would get if no other target serves."""
        asked = model or call.model or (call.json or {}).get("model")
        price = self._facts.price(subject.id, asked if isinstance(asked, str) else None)
        try:
            return await self._limiter.admit([subject], call.json, price)
        except REFUSALS as refused:
            return refused


def settle_with_request(call: Call, ticket: Ticket) -> None:
    """The attempt that answered: its ticket is settled with the request's usage, when the request log
    settles the request's own (the answer or the stream has ended)."""
    before = call.on_usage
    call.on_usage = ticket.settle if before is None else _both(before, ticket.settle)


def _both(first: Callable[[int, int], None], second: Callable[[int, int], None]) -> Callable[[int, int], None]:
    def settle(prompt_tokens: int, completion_tokens: int) -> None:
        try:
            first(prompt_tokens, completion_tokens)
        finally:
            second(prompt_tokens, completion_tokens)
    return settle


def release(ticket: Ticket) -> None:
    """A failed attempt used nothing: its reservations go (its request count stays, it was sent)."""
    ticket.settle(0, 0)
