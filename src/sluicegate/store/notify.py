"""Change notifications on PostgreSQL: one ``LISTEN sluicegate_changes`` connection per process.

Every write of the catalog, the API keys or the limits bumps a version row and sends ``NOTIFY`` in the
same transaction (store/state.py); this listener turns each notification into a ``wake()`` of the
snapshot poller that watches that row, so every replica reloads within milliseconds of the commit. The
pollers' periodic reload stays as the safety net for anything a notification could miss.

The connection is its own (not from the engine's pool: a LISTEN connection is held for the process's
life). When it drops (PostgreSQL restarted, network cut) it is reopened with a capped backoff, and every
subscriber is woken once it listens again, since notifications sent meanwhile were lost. A connection
that stops answering without closing is found by a periodic ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

from ..tasks import BackgroundTask
from .state import CHANGES_CHANNEL

CONNECT_TIMEOUT_S = 3.0
KEEPALIVE_S = 5.0  # how often an idle listening connection is checked
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0

Wake = Callable[[], None]


class ChangeListener:
    def __init__(self, url: URL, *, logger: logging.Logger | None = None) -> None:
        # asyncpg speaks libpq's URL; SQLAlchemy's names the driver in the scheme.
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._log = logger or logging.getLogger("sluicegate.store")
        self._subscribers: dict[str, list[Wake]] = {}
        self._task = BackgroundTask("sluicegate-change-listener")
        self.listening = False
        self._failing = False
        self.connections = 0  # LISTEN connections opened so far (tests read it to see a reconnect)

    def subscribe(self, state_id: int, wake: Wake) -> None:
        self._subscribers.setdefault(str(state_id), []).append(wake)

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        wakes = self._subscribers.get(payload)
        for wake in wakes if wakes is not None else self._all():  # an unknown id: be safe, wake everyone
            wake()

    def _all(self) -> list[Wake]:
        return [wake for wakes in self._subscribers.values() for wake in wakes]

    async def _run(self) -> None:
        import asyncpg

        delay = RETRY_MIN_S
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
                delay = RETRY_MIN_S
                try:
                    await self._listen(conn)
                finally:
                    self.listening = False
                    if not conn.is_closed():
                        conn.terminate()
                self._lost("the connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything the driver or the network throws: reconnect
                self._lost(type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _lost(self, why: str) -> None:
        if not self._failing:  # once per outage, not once per attempt
            self._log.warning("change notifications lost (%s); the periodic reload covers until they are back",
                              why)
        self._failing = True

    async def _listen(self, conn: Any) -> None:
        """Listen on ``conn`` until it closes (returns) or stops answering (raises)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANGES_CHANNEL, self._notified)
        self.listening, self.connections = True, self.connections + 1
        if self._failing:
            self._log.warning("change notifications: listening again")
        self._failing = False
        for wake in self._all():  # whatever changed while nobody listened
            wake()
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), KEEPALIVE_S)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_S)
