"""Counters in Redis, shared by every worker and replica: ONE script call per admission and per settle.

The script (script.lua) reads Redis's clock (``TIME``), tests every check of the request and applies
them only if all pass, so concurrent requests on any number of processes are serialised by Redis.
Reservations carry an expiry (the script's sorted sets), so a process killed mid-request leaves nothing
behind for longer than the TTL. Any Redis failure is a ``StoreUnavailable`` (the caller decides: fail
closed or open); the client times out fast, so a dead Redis never hangs a request. The script's calls go
through one multiplexed connection per process (redis_channel.py: a third of redis-py's CPU per call). An
admission whose connection broke is sent once more, at once: after Redis restarts, the socket that still
points at the old server fails on first use, and the retry opens a new connection. Only admissions are retried: the
script's admit writes entries keyed by the request id, so one whose first reply was lost counts once
(at worst it sees its own entry and is refused: the strict side); its budget settle is not idempotent.
"""

from __future__ import annotations

import hashlib
import time
from importlib import resources
from typing import Any

from hiredis import ReplyError

from .backend import DEFAULT_TTL_MS, Alert, StoreUnavailable, Verdict
from .checks import BUDGET, RATE, Check
from .periods import period_end_ms, period_id
from .redis_channel import ChannelBroken, RedisChannel

SCRIPT = resources.files(__package__).joinpath("script.lua").read_text()
# A refused connection (Redis down) fails at once; these bound a Redis that stops answering. Generous
# enough for a loaded host, short enough that a request never hangs on it.
TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
POOL_SIZE = 64  # connections per process; a request waits for one at most TIMEOUT_S


def script_keys(prefix: str, checks: list[Check]) -> list[str]:
    keys = []
    for check in checks:
        base = prefix + check.key
        if check.kind == RATE:
            keys += [base + ":log", base + ":w", base + ":sum"]
        else:
            keys += [base + ":st", base + ":res", base + ":amt"]
    return keys


def _kind(check: Check) -> str:
    if check.kind == BUDGET:
        return "b"
    return "r" if check.measure == "requests" else "t"


def script_args(op: str, rid: str, ttl_ms: int, checks: list[Check], amounts: list[Any],
                now_ms: int | None) -> list[Any]:
    args: list[Any] = [op, rid, ttl_ms, "" if now_ms is None else now_ms]
    for check, amount in zip(checks, amounts, strict=True):
        args += [_kind(check), repr(float(check.limit)), "" if amount is None else repr(float(amount)),
                 check.window_ms if check.kind == RATE else (check.reset or ""),
                 "" if check.alert is None else repr(float(check.alert))]
    return args


def verdict(checks: list[Check], reply: list[Any]) -> Verdict:
    """The script's admit reply → Verdict (remaining and reset computed here, from Redis's clock)."""
    failed, now = int(reply[0]) - 1, int(reply[1])
    remaining, resets = [], []
    for i, check in enumerate(checks):
        taken, oldest = float(reply[2 + 2 * i]), int(reply[3 + 2 * i])
        remaining.append(max(0.0, check.limit - taken - (0 if failed >= 0 else check.amount)))
        if check.kind == RATE:
            resets.append(oldest + check.window_ms - now)
        else:
            end = period_end_ms(now, check.reset)
            resets.append(end - now if end else 0)
    return Verdict(failed, tuple(remaining), tuple(resets))


class RedisCounters:
    def __init__(self, url: str, *, prefix: str = "sluicegate:limits:", clock_override: Any = None,
                 timeout_s: float = TIMEOUT_S, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # The script (its calls and loading it) goes through a channel of its own; redis-py serves the rest.
        self._channel = RedisChannel(url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
        pool = BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=timeout_s,
                                               socket_timeout=timeout_s, socket_connect_timeout=connect_timeout_s)
        self._redis = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
        self._prefix = prefix
        self._clock_override = clock_override  # tests: a function giving the script's "now" in ms

    def _now(self) -> int | None:
        return None if self._clock_override is None else int(self._clock_override())

    async def admit(self, checks: list[Check], rid: str, ttl_ms: int = DEFAULT_TTL_MS) -> Verdict:
        if not checks:
            return Verdict(-1, (), ())
        amounts = [check.amount for check in checks]
        call = self._call(checks, script_args("admit", rid, ttl_ms, checks, amounts, self._now()))
        (reply,) = await self._script([call], retry_broken=True)
        return verdict(checks, reply)

    async def settle(self, checks: list[Check], rid: str, actual: list[float | None]) -> list[Alert]:
        return await self.settle_many([(checks, rid, actual)])

    async def settle_many(self, items: list[tuple[list[Check], str, list[float | None]]]) -> list[Alert]:
        """Several settlements in one write (each script call still atomic). Never retried: a budget's
        settle is not idempotent."""
        items = [item for item in items if item[0] and any(a is not None for a in item[2])]
        if not items:
            return []
        now = self._now()
        calls = [self._call(checks, script_args("settle", rid, 0, checks, actual, now))
                 for checks, rid, actual in items]
        replies = await self._script(calls, retry_broken=False)
        return [Alert(check.label, check.key, float(crossed), float(check.alert or 0))
                for (checks, _, _), reply in zip(items, replies, strict=True)
                for check, crossed in zip(checks, reply[1:], strict=True) if crossed not in ("", b"")]

    def _call(self, checks: list[Check], args: list[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self._sha, 3 * len(checks), *script_keys(self._prefix, checks), *args)

    async def _script(self, calls: list[tuple[Any, ...]], *, retry_broken: bool) -> list[Any]:
        """The script's replies for these calls; any failure is StoreUnavailable. ``retry_broken``: calls
        whose connection broke are sent once more on a new one (only admissions are: see above)."""
        try:
            try:
                return await self._evalsha_all(calls)
            except ChannelBroken:
                if not retry_broken:
                    raise
                return await self._evalsha_all(calls)
        except (OSError, TimeoutError, ScriptFailed) as exc:  # ChannelBroken is an OSError
            raise StoreUnavailable(f"the limits store (Redis) is unreachable: {type(exc).__name__}") from None

    async def _evalsha_all(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """The script by its SHA for every call. A Redis that lost its scripts (a restart) answers NOSCRIPT,
        which applied nothing: those calls, and only those, go again once it is loaded. Any other error
        reply is raised."""
        replies = await self._channel.call_many(calls)
        missing = [i for i, reply in enumerate(replies) if _is_error(reply, "NOSCRIPT")]
        if missing:
            loaded = await self._channel.call("SCRIPT", "LOAD", SCRIPT)
            if _is_error(loaded):
                raise ScriptFailed(str(loaded)[:200])
            for i, reply in zip(missing, await self._channel.call_many([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        failed = next((reply for reply in replies if _is_error(reply)), None)
        if failed is not None:
            raise ScriptFailed(str(failed)[:200])
        return [list(reply) for reply in replies]

    async def reset(self, key_prefix: str) -> None:
        from redis.exceptions import RedisError

        try:
            async for key in self._redis.scan_iter(match=f"{self._prefix}{key_prefix}*:st", count=500):
                await self._redis.delete(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"the limits store (Redis) is unreachable: {type(exc).__name__}") from None

    async def used(self, check: Check) -> float:
        """The budget's usage this period: what was stored in an earlier one is 0 now (the next admission
        starts the period from 0), read by the same rule as the script's."""
        from redis.exceptions import RedisError

        try:
            period, used = await self._redis.hmget(self._prefix + check.key + ":st", ["period", "used"])
        except (RedisError, OSError) as exc:  # as for admit and reset: a 503, never a 500
            raise StoreUnavailable(f"the limits store (Redis) is unreachable: {type(exc).__name__}") from None
        now = self._now()
        now_ms = now if now is not None else int(time.time() * 1000)
        if period is None or int(period) != period_id(now_ms, check.reset):
            return 0.0
        return float(used or 0)

    async def close(self) -> None:
        await self._channel.close()
        await self._redis.aclose()


class ScriptFailed(Exception):
    """Redis answered the script with an error (never a credential: Redis's own words)."""


def _is_error(reply: Any, code: str = "") -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith(code)
