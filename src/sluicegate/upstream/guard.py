"""The SSRF guard every outbound request passes through: check the URL, then pin what the name resolves to.

Two layers (docs/security.md; rules and their order in ``policy.py``):

* ``Guard.check_url(url)`` — request time, pure and cached: syntax, scheme, port, and the host as
  written. IP-literal hosts are judged completely here, because aiohttp never calls the resolver for
  them. The core calls it for every custom host / provider base URL before building a request.
* ``Guard.resolver()`` — connection time: a ``GuardedResolver`` for the one ``TCPConnector``. It
  resolves the name, checks EVERY address, and returns only checked addresses, so the socket connects
  to exactly what was judged (pinning); the verdict is cached per (host, port) for ``ttl_s``, so a DNS
  rebinding answer cannot slip in between the check and the connect, nor on the next request.

How a block raised inside the resolver reaches the caller (read from aiohttp 3.14's connector and
client, and asserted in tests/upstream/test_guard_aiohttp.py): ``InvalidCustomHost`` is NOT an
``OSError``, and aiohttp only wraps ``OSError`` from a resolver (into ``ClientConnectorDNSError``).
So ``session.request(...)`` raises our ``InvalidCustomHost`` itself, unwrapped, before any socket is
opened; it is neither an ``aiohttp.ClientError`` nor an ``OSError``, so an ``except ClientError``
clause lets it through. Catch it directly (``except InvalidCustomHost``), or, where another layer
might wrap it, call ``blocked_reason(exc)`` in a broad except clause: it finds the block in the
cause/context chain, in ``os_error`` and in exception groups. The app must build the connector with
``use_dns_cache=False`` (our cache replaces aiohttp's, which would otherwise skip the resolver) and
must not follow redirects or use ``trust_env`` proxies: a redirect to an IP literal or a proxy would
bypass the resolver. ``Guard.client_middleware()`` adds a per-hop ``check_url`` as a second belt.

Every refusal is logged on ``sluicegate.security`` at WARNING, with credentials, query and fragment
cut out of the URL first.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp.abc
from aiohttp.abc import ResolveResult

from ..errors import InvalidCustomHost
from .addresses import NotAnIPv4, parse_ip, parse_ipv4_host
from .names import BadHostName, check_name_syntax, normalise_name
from .policy import GuardPolicy
from .urls import MAX_URL, CheckedURL, parse_url, url_end

__all__ = ["CheckedURL", "Guard", "GuardPolicy", "GuardedResolver", "blocked_reason", "redact_url"]

SECURITY_LOG = logging.getLogger("sluicegate.security")
URL_CACHE_SIZE = 1024
VERDICT_CACHE_SIZE = 4096
_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_ANY_FAMILY = int(socket.AF_UNSPEC)


def _printable(text: str, limit: int = 300) -> str:
    """Log-safe: no control characters (no forged log lines), bounded length."""
    text = text[:limit]
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def redact_url(url: object) -> str:
    """The URL without userinfo, query or fragment, for logs. Over-redacts rather than leak: a
    password may itself contain '/', '#' or '?', so everything up to the LAST '@' goes."""
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    end = url_end(url)
    if end < len(url):
        url = url[:end] + " ***"
    if "@" in url:
        scheme, sep, _ = url.partition("://")
        url = (scheme + sep if sep else "") + "***@" + url.rsplit("@", 1)[1]
    for mark in "?#":
        if mark in url:
            url = url.split(mark, 1)[0] + mark + "***"
    return _printable(url)


def log_refusal(stage: str, target: str, reason: str) -> None:
    SECURITY_LOG.warning(
        "ssrf_blocked stage=%s target=%s reason=%s", stage, target, _printable(reason),
        extra={"event": "ssrf_blocked", "stage": stage, "target": target, "reason": reason},
    )


def blocked_reason(exc: BaseException) -> InvalidCustomHost | None:
    """The guard's refusal hidden in ``exc`` (itself, a cause/context, ``os_error``, a group member)."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, InvalidCustomHost):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "os_error", None)]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return None


def _remember(cache: dict, key, value, size: int) -> None:
    """Bounded insert: evict the oldest entry (dicts keep insertion order)."""
    if len(cache) >= size:
        del cache[next(iter(cache))]
    cache[key] = value


class Guard:
    """One per app. Holds the policy, the request-time cache and the one GuardedResolver."""

    def __init__(
        self,
        policy: GuardPolicy,
        *,
        resolver: aiohttp.abc.AbstractResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = 30.0,
    ) -> None:
        self._policy = policy
        self._urls: dict[str, CheckedURL | str] = {}  # url → result, or the refusal reason
        self._resolver = GuardedResolver(self, resolver, clock=clock, ttl_s=ttl_s)
        for entry in policy.ineffective_entries():
            SECURITY_LOG.warning("allow entry %r names an always-blocked target and has no effect", entry)

    @property
    def policy(self) -> GuardPolicy:
        return self._policy

    def check_url(self, url: object) -> CheckedURL:
        """Request-time check; raises InvalidCustomHost. No I/O. Any value is judged (a non-string is
        refused), as a config's may arrive."""
        key = url if isinstance(url, str) and len(url) <= MAX_URL else None  # None: not cached
        cached = self._urls.get(key) if key is not None else None
        if isinstance(cached, CheckedURL):
            return cached
        try:
            if cached is not None:
                raise InvalidCustomHost(cached)
            checked = self._judge(url)
        except InvalidCustomHost as exc:
            if key is not None:
                _remember(self._urls, key, exc.reason, URL_CACHE_SIZE)
            log_refusal("request", redact_url(url), exc.reason)
            raise
        if key is not None:
            _remember(self._urls, key, checked, URL_CACHE_SIZE)
        return checked

    def _judge(self, url: object) -> CheckedURL:
        parsed = parse_url(url)
        if parsed.address is not None:
            self._policy.check_ip_literal(parsed.address, parsed.port, parsed.host)
        else:
            self._policy.check_name(parsed.host, parsed.port)
        return parsed.checked()

    def set_extra_allows(self, entries: Iterable[str]) -> None:
        """Replace the catalog's allow entries. ValueError (nothing changed) if one is malformed."""
        self._policy = self._policy.with_extra(list(entries))
        self._urls.clear()
        self._resolver.forget()

    def resolver(self) -> GuardedResolver:
        return self._resolver

    def client_middleware(self):
        """An aiohttp client middleware that runs ``check_url`` on every hop's origin, redirects
        included; a second belt for IP-literal targets, which never reach the resolver."""

        async def ssrf_guard(req, handler):
            self.check_url(str(req.url.origin()))
            return await handler(req)

        return ssrf_guard


@dataclass(frozen=True)
class _Verdict:
    expires: float
    results: tuple[ResolveResult, ...] = ()
    refusal: str | None = None


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolve, check every address, return only those (pinned), cache the verdict for ``ttl_s``."""

    def __init__(self, guard: Guard, inner: aiohttp.abc.AbstractResolver | None, *, clock, ttl_s: float):
        self._guard = guard
        self._inner = inner  # None: aiohttp's ThreadedResolver, made on first use (it needs the loop)
        self._clock = clock
        self._ttl_s = ttl_s
        self._verdicts: dict[tuple[str, int, int], _Verdict] = {}
        self._inflight: dict[tuple[str, int, int], asyncio.Task] = {}
        self._generation = 0  # bumped when the allow-list changes; older lookups are not cached

    def forget(self) -> None:
        """Drop every verdict; lookups still running under the old allow-list are neither joined
        by new requests nor cached."""
        self._generation += 1
        self._verdicts.clear()
        self._inflight.clear()

    @property
    def generation(self) -> int:
        """Changes whenever the allow-list does: what was pinned under an older one is not to be reused."""
        return self._generation

    async def addresses(self, host: str, port: int) -> tuple[str, ...]:
        """The checked addresses of ``host:port`` (IP literals), for a client that connects only to them
        (``reqwest.py``); InvalidCustomHost as ``resolve``. A cached verdict is a dict lookup."""
        verdict = self._verdicts.get((host, port, _ANY_FAMILY))
        if verdict is not None and verdict.refusal is None and verdict.expires > self._clock():
            return tuple(result["host"] for result in verdict.results)
        return tuple(result["host"] for result in await self.resolve(host, port, socket.AF_UNSPEC))

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        key = (host, port, int(family))
        verdict = self._verdicts.get(key)
        if verdict is not None and verdict.expires > self._clock():
            return self._answer(host, verdict)
        task = self._inflight.get(key)
        if task is None:
            # One lookup per key at a time; concurrent connects wait for it instead of re-resolving.
            task = asyncio.ensure_future(self._lookup(host, port, family))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return self._answer(host, await asyncio.shield(task))

    def _settle(self, key, task: asyncio.Task) -> None:
        if self._inflight.get(key) is task:  # forget() may have let a newer lookup take the key
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: a waiter may have gone away

    @staticmethod
    def _answer(host: str, verdict: _Verdict) -> list[ResolveResult]:
        if verdict.refusal is not None:
            log_refusal("connect", _printable(host), verdict.refusal)
            raise InvalidCustomHost(verdict.refusal)
        return [ResolveResult(**result) for result in verdict.results]  # copies: callers may mutate

    async def _lookup(self, host: str, port: int, family: socket.AddressFamily) -> _Verdict:
        generation, policy = self._generation, self._guard.policy
        try:
            name = self._normalise(host)
            literal = parse_ip(name)
            if literal is not None:
                policy.check_ip_literal(literal, port, name)
                results = [self._pin(host, name, port)]
            else:
                policy.check_name(name, port)  # a refused name never costs a DNS query
                results = self._pin_all(host, port, await self._resolve_inner(host, port, family))
                # Pinned results are the resolver's own IP literals: they always parse.
                policy.check_resolved(name, port, [parse_ip(r["host"]) for r in results])  # type: ignore[misc]
            verdict = _Verdict(self._clock() + self._ttl_s, tuple(results))
        except InvalidCustomHost as exc:
            verdict = _Verdict(self._clock() + self._ttl_s, refusal=exc.reason)
        if generation == self._generation:
            _remember(self._verdicts, (host, port, int(family)), verdict, VERDICT_CACHE_SIZE)
        return verdict

    @staticmethod
    def _normalise(host: str) -> str:
        try:
            name = normalise_name(host.strip("[]"))
            if parse_ip(name) is None:
                numeric = parse_ipv4_host(name)  # "127.1" would reach getaddrinfo as 127.0.0.1
                if numeric is not None:
                    return str(numeric)
                check_name_syntax(name)
        except (BadHostName, NotAnIPv4) as exc:
            raise InvalidCustomHost(str(exc)) from None
        return name

    async def _resolve_inner(self, host: str, port: int, family: socket.AddressFamily) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        answers = await self._inner.resolve(host, port, family=family)
        if not answers:
            raise OSError(f"{host} did not resolve to any address")
        return answers

    @classmethod
    def _pin_all(cls, host: str, port: int, answers: list[ResolveResult]) -> list[ResolveResult]:
        pinned = []
        for answer in answers:
            if parse_ip(answer["host"]) is None:  # a name here would be resolved again at connect
                raise InvalidCustomHost(f"{host} resolved to {answer['host']!r}, which is not an address")
            pinned.append(cls._pin(host, answer["host"], port))
        return pinned

    @staticmethod
    def _pin(hostname: str, address: str, port: int) -> ResolveResult:
        # The requested port, not the resolver's: a resolver must not be able to move us to port 22.
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return ResolveResult(
            hostname=hostname, host=address, port=port, family=family, proto=0, flags=_NUMERIC_FLAGS
        )

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
