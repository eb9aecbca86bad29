"""In-flight counts shared by every worker and replica through Redis (with SLUICEGATE_REDIS_URL), off the
request path: the request path only counts in the process's own load board (routing/load.py).

Every ``interval_s`` one task writes, for each least-busy target this process knows, its own count into a
Redis hash per target (field: this process's id, value: ``count:epoch-seconds``) and reads the other fields
back in the same pipeline; the fresh ones (written within ``stale_s``) are summed into the board as the
others' count. A process that dies simply stops refreshing its field: it stops counting after ``stale_s``
and is deleted later, and each hash expires ``ttl_s`` after its last write. Absolute counts rather than
INCR/DECR, so a crashed process can never leave a count behind that nobody takes back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..routing.load import LoadBoard
from ..tasks import BackgroundTask

log = logging.getLogger(__name__)

PREFIX = "sluicegate:inflight:"
TIMEOUT_S = 1.0


def parse_fields(fields: dict[Any, Any], me: str, now: float, stale_s: float) -> tuple[int, list[str]]:
    """The other processes' fresh counts summed, and the fields dead long enough to delete. Pure."""
    total, dead = 0, []
    for raw_name, raw_value in fields.items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        value = raw_value.decode() if isinstance(raw_value, bytes) else str(raw_value)
        count_text, _, at_text = value.partition(":")
        try:
            count, at = int(count_text), float(at_text)
        except ValueError:
            dead.append(name)
            continue
        if name == me:
            continue
        age = now - at
        if age <= stale_s:
            total += max(0, count)
        elif age > 10 * stale_s:
            dead.append(name)
    return total, dead


class SharedInFlight:
    def __init__(self, board: LoadBoard, url: str, *, interval_s: float = 0.25, stale_s: float = 2.0,
                 prefix: str = PREFIX, wall_clock: Callable[[], float] = time.time) -> None:
        from redis.asyncio import Redis

        self._board = board
        self._redis = Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self.interval_s = interval_s
        self.stale_s = stale_s
        self.ttl_s = max(60, int(stale_s * 30))
        self._prefix = prefix
        self._clock = wall_clock
        self.me = uuid.uuid4().hex[:16]  # this process
        self._task = BackgroundTask("sluicegate-shared-in-flight")
        self.up = False
        self.rounds = 0

    def key(self, target_key: str) -> str:
        # Hashed: the target key holds the host and a digest of the credential; Redis needs neither.
        return self._prefix + hashlib.sha256(target_key.encode()).hexdigest()[:32]

    def start(self) -> None:
        self._task.start(self._loop)

    async def stop(self) -> None:
        await self._task.stop()
        await self._redis.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                # Only an exchange with Redis says it is reachable: with no least-busy target yet there is
                # none, and "Redis reachable" was logged at start beside other parts' "unreachable".
                if await self.sync_once() and not self.up:
                    log.info("shared in-flight counts: Redis reachable")
                    self.up = True
            except Exception as exc:  # Redis down: each process goes by its own counts (stale others expire)
                if self.up:
                    log.warning("shared in-flight counts: Redis unreachable (%s)", type(exc).__name__)
                self.up = False
            await asyncio.sleep(self.interval_s)

    async def sync_once(self) -> bool:
        """Share this process's counts and read the others'; False when there was nothing to share (no
        least-busy target has been used), and Redis was not asked."""
        views = list(self._board.views())
        if not views:
            self.rounds += 1
            return False
        now = self._clock()
        pipe = self._redis.pipeline(transaction=False)
        for view in views:
            key = self.key(view.key)
            pipe.hset(key, self.me, f"{view.in_flight}:{now:.3f}")
            pipe.expire(key, self.ttl_s)
            pipe.hgetall(key)
        replies = await pipe.execute()
        cleanup = self._redis.pipeline(transaction=False)
        stale = False
        for index, view in enumerate(views):
            others, dead = parse_fields(replies[3 * index + 2], self.me, now, self.stale_s)
            self._board.shared(view.key, others)
            if dead:
                cleanup.hdel(self.key(view.key), *dead)
                stale = True
        if stale:
            await cleanup.execute()
        self.rounds += 1
        return True
