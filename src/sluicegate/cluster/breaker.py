"""The circuit breakers of every replica as one, through Redis (used when SLUICEGATE_REDIS_URL is set).

Design: each process keeps its own ``CircuitBreaker`` (routing/breaker.py) and judges requests from it
alone, so a closed circuit costs no Redis round trip. Redis holds only what must be common:

- a hash per open circuit, ``sluicegate:breaker:<key>``: ``opened_at`` (Redis's clock, ms) and
  ``trial_at`` (when a replica took the half-open trial), expiring a while after its cooldown;
- the channel ``sluicegate:breaker``, on which a replica announces that it opened or closed a circuit.

A replica that opens a circuit writes the hash and publishes in one script; every other replica, subscribed,
opens its own copy at once (the age from Redis's clock, so host clocks need not agree). When the cooldown
is over, the first replica with traffic for it asks Redis for the trial (a script: granted to exactly one
caller per cooldown); the others keep refusing until that trial's result is published: a success closes the
circuit everywhere, a failure opens it again everywhere. Each replica counts failures itself: a failing
upstream fails for all of them alike, so the first to reach the threshold opens the circuit for all.

Redis down: the breaker goes on per process (what it is without Redis), claims are granted locally so a
half-open circuit is still tried, and failures are logged once; on resubscribing, the open circuits are
read back from Redis (nothing published meanwhile is missed for long).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import orjson
from redis.asyncio import Redis

from ..routing.breaker import CircuitBreaker

PREFIX = "sluicegate:breaker:"
CHANNEL = "sluicegate:breaker"
TIMEOUT_S = 1.0
RETRY_S = 1.0
KEEP_AFTER_COOLDOWN_MS = 60_000  # an open circuit nobody tries any more is forgotten this long after
log = logging.getLogger("sluicegate.breaker")

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
# KEYS[1] hash; ARGV: ttl ms, channel, message (without the age, which is 0 here)
OPEN = _NOW + """
redis.call('HSET', KEYS[1], 'opened_at', now)
redis.call('HDEL', KEYS[1], 'trial_at')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return now
"""
CLOSE = """
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""
# ARGV: cooldown ms → {verdict, age ms}: closed (no circuit), open (cooldown not over), taken, granted
CLAIM = _NOW + """
local opened = redis.call('HGET', KEYS[1], 'opened_at')
if not opened then return {'closed', 0} end
local age = now - tonumber(opened)
if age < tonumber(ARGV[1]) then return {'open', age} end
local trial = redis.call('HGET', KEYS[1], 'trial_at')
if trial and now - tonumber(trial) < tonumber(ARGV[1]) then return {'taken', age} end
redis.call('HSET', KEYS[1], 'trial_at', now)
return {'granted', age}
"""
AGE = _NOW + """
local opened = redis.call('HGET', KEYS[1], 'opened_at')
if not opened then return -1 end
return now - tonumber(opened)
"""


class RedisBreakerPeer:
    def __init__(self, url: str, *, prefix: str = PREFIX, channel: str = CHANNEL) -> None:
        self._redis = Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self._prefix, self._channel = prefix, channel
        self._origin = os.urandom(8).hex()  # this process: its own announcements come back to it too
        self._breaker: CircuitBreaker | None = None
        self._claiming: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._failing = False
        self.subscribed = asyncio.Event()  # set while the subscription is live (tests wait on it)

    def bind(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    # -- BreakerPeer: called from the hot path, never blocking ---------------------------------------

    def opened(self, key: str, cooldown_s: float) -> None:
        ttl = int(cooldown_s * 2000) + KEEP_AFTER_COOLDOWN_MS
        message = self._message("open", key)
        self._spawn(self._redis.eval(OPEN, 1, self._prefix + key, ttl, self._channel, message))

    def closed(self, key: str) -> None:
        self._spawn(self._redis.eval(CLOSE, 1, self._prefix + key, self._channel, self._message("closed", key)))

    def claim(self, key: str, cooldown_s: float) -> None:
        if key not in self._claiming:
            self._claiming.add(key)
            self._spawn(self._claim(key, int(cooldown_s * 1000)))

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="sluicegate-breaker-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=TIMEOUT_S * 2)
        await self._redis.aclose()

    # -- internals --------------------------------------------------------------------------------------

    def _message(self, state: str, key: str) -> str:
        return orjson.dumps({"o": self._origin, "s": state, "k": key}).decode()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failed(task.exception())

    def _failed(self, exc: BaseException | None) -> None:
        if not self._failing:
            log.warning("shared circuit breaker: Redis unreachable (%s); breakers work per process until it "
                        "is back", type(exc).__name__)
        self._failing = True

    async def _claim(self, key: str, cooldown_ms: int) -> None:
        assert self._breaker is not None
        try:
            verdict, age_ms = await self._redis.eval(CLAIM, 1, self._prefix + key, cooldown_ms)
        except Exception as exc:
            self._failed(exc)
            self._breaker.trial_answer(key, True)  # no Redis: each process tries on its own
            return
        finally:
            self._claiming.discard(key)
        verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
        if verdict == "closed":
            self._breaker.remote_closed(key)
        elif verdict == "open":
            self._breaker.remote_opened(key, int(age_ms) / 1000)
        else:
            self._breaker.trial_answer(key, verdict == "granted")

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._resync()
                self.subscribed.set()
                if self._failing:
                    log.warning("shared circuit breaker: Redis reachable again")
                self._failing = False
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None:
                        self._apply(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_S)

    def _apply(self, data: Any) -> None:
        assert self._breaker is not None
        try:
            news = orjson.loads(data)
            origin, state, key = news["o"], news["s"], news["k"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return  # not ours (someone else publishing on the channel)
        if origin == self._origin or not isinstance(key, str):
            return
        if state == "open":
            self._breaker.remote_opened(key, 0.0)
        elif state == "closed":
            self._breaker.remote_closed(key)

    async def _resync(self) -> None:
        """Open here every circuit open in Redis (announcements sent while unsubscribed were missed)."""
        assert self._breaker is not None
        async for name in self._redis.scan_iter(match=self._prefix + "*", count=500):
            name = name.decode() if isinstance(name, bytes) else name
            age_ms = int(await self._redis.eval(AGE, 1, name))
            if age_ms >= 0:
                self._breaker.remote_opened(name[len(self._prefix):], age_ms / 1000)
