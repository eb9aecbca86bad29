"""The compiled Gateway Config: frozen runtime objects, built once per distinct config text.

Inheritance (docs/gateway-config.md) is already applied when these objects exist, so the hot path only layers the
request headers (custom host, forward headers, timeout, strictness) on top of a leaf ``Target``.
A request without a config is the one-leaf tree ``Target(json_path="config", provider=None, ...)``:
``provider=None`` means "take the provider and the credential from the request headers".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})

DEFAULT_RETRY_STATUS_CODES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int  # retries after the first call: 0..MAX_RETRY_ATTEMPTS
    on_status_codes: frozenset[int] = DEFAULT_RETRY_STATUS_CODES
    use_retry_after: bool = False


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Circuit breaker (hosted ``cb_config``): skip a target that keeps failing until its cooldown passes."""

    failure_threshold: int | None  # consecutive failures that open it; None: only the rate rule below
    cooldown_ms: int
    failure_status_codes: frozenset[int] | None = None  # None: any 5xx, 429, timeout or connection error
    # Hosted's rate rule: open when more than this share of the requests failed, once there were enough.
    failure_threshold_percentage: float | None = None
    minimum_requests: int = 1


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A config's ``cache`` block, validated and carried to the pipeline's cache step (``pipeline/``)."""

    mode: str  # "simple" | "semantic"
    max_age_s: int | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    query: Mapping[str, Any]
    then: str


@dataclass(frozen=True, slots=True)
class Strategy:
    mode: str  # "single" | "fallback" | "loadbalance" | "conditional"
    on_status_codes: frozenset[int] | None = None
    conditions: tuple[Condition, ...] = ()
    default: str | None = None
    policy: str = "weighted"  # loadbalance only: "weighted" | "least-busy" (routing/least_busy.py)


@dataclass(frozen=True, slots=True)
class Target:
    """A leaf: one upstream to try, with every inherited setting resolved."""

    json_path: str  # for x-portkey-last-used-option-index: "config", "config.targets[1].targets[0]"
    provider: str | None = None  # provider id ("openai"), catalog slug ("@my-llm"), or None: from the request
    api_key: str | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] = ()  # lower-case, "_" folded to "-"
    override_params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    retry: RetryPolicy | None = None
    request_timeout_ms: int | None = None
    strict_open_ai_compliance: bool | None = None
    breaker: BreakerPolicy | None = None
    name: str | None = None
    weight: float = 1.0
    cache: CachePolicy | None = None  # as written on this node (not inherited)


@dataclass(frozen=True, slots=True)
class Group:
    """An inner node: a strategy over children (groups or leaves)."""

    json_path: str
    strategy: Strategy
    children: tuple[Node, ...] = field(default_factory=tuple)
    name: str | None = None
    weight: float = 1.0
    cache: CachePolicy | None = None  # as written on this node (not inherited)


Node = Group | Target


def targets(node: Node) -> Iterator[Target]:
    """Every leaf of a config tree, in order."""
    if isinstance(node, Target):
        yield node
        return
    for child in node.children:
        yield from targets(child)
