"""SSRF guard (provisional): URL syntax checks only. Replaced by the full guard of issue 5."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from ..errors import InvalidCustomHost


@dataclass(frozen=True)
class CheckedURL:
    scheme: str
    host: str
    port: int
    base: str


class GuardPolicy:
    @classmethod
    def from_settings(cls, settings) -> "GuardPolicy":
        return cls()


class Guard:
    def __init__(self, policy: GuardPolicy, *, resolver: AbstractResolver | None = None,
                 clock=time.monotonic, ttl_s: float = 30.0) -> None:
        self._policy = policy
        self._resolver = resolver

    def check_url(self, url: str) -> CheckedURL:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidCustomHost("only http and https URLs with a host are allowed")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return CheckedURL(parts.scheme, parts.hostname, port, url.rstrip("/"))

    def set_extra_allows(self, entries: Iterable[str]) -> None:
        pass

    def resolver(self) -> AbstractResolver | None:
        return self._resolver


def blocked_reason(exc: BaseException) -> InvalidCustomHost | None:
    return None
