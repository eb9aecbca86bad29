"""The one interface both counter stores satisfy, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .checks import Check

DEFAULT_TTL_MS = 10 * 60 * 1000  # a reservation a dead process left behind expires after this


@dataclass(frozen=True, slots=True)
class Verdict:
    """The all-or-nothing answer: admitted (failed == -1) or the index of the first check that refused.

    ``remaining``/``reset_ms`` are per check (after this request when admitted); ``reset_ms`` is the
    time until the refusing window frees room (rate) or the period ends (budget, 0 when it never does).
    """

    failed: int
    remaining: tuple[float, ...]
    reset_ms: tuple[int, ...]

    @property
    def admitted(self) -> bool:
        return self.failed < 0


@dataclass(frozen=True, slots=True)
class Alert:
    label: str
    key: str
    used: float
    threshold: float


class StoreUnavailable(Exception):
    """The counter store could not be reached (Redis down): the caller fails closed or open."""


class Counters(Protocol):
    async def admit(self, checks: list[Check], rid: str, ttl_ms: int = DEFAULT_TTL_MS) -> Verdict: ...

    async def settle(self, checks: list[Check], rid: str, actual: list[float | None]) -> list[Alert]: ...

    async def settle_many(self, items: list[tuple[list[Check], str, list[float | None]]]) -> list[Alert]: ...

    async def reset(self, key_prefix: str) -> None: ...

    async def used(self, check: Check) -> float: ...

    async def close(self) -> None: ...
