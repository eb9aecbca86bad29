"""Routing decisions: pure functions of the compiled config, the request and injected time/randomness."""

from sluicegate.routing.breaker import CircuitBreaker, breaker_key
from sluicegate.routing.conditional import choose_conditional
from sluicegate.routing.retry import retry_delay, should_fallback
from sluicegate.routing.weighted import pick_weighted

__all__ = [
    "CircuitBreaker",
    "breaker_key",
    "choose_conditional",
    "pick_weighted",
    "retry_delay",
    "should_fallback",
]
