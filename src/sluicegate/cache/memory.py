"""The in-memory backend: least recently used first out, bounded in bytes and in entries, expiry by clock."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryBackend:
    def __init__(self, max_bytes: int, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._clock = clock

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes) held."""
        return len(self._items), self._bytes

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires_at, data = item
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return data

    async def put(self, key: str, data: bytes, ttl_s: float) -> None:
        self._drop(key)
        if len(data) + len(key) > self._max_bytes:
            return
        self._items[key] = (self._clock() + ttl_s, data)
        self._bytes += len(data) + len(key)
        while self._bytes > self._max_bytes or len(self._items) > self._max_entries:
            oldest, (_, old) = self._items.popitem(last=False)
            self._bytes -= len(old) + len(oldest)

    async def close(self) -> None:
        self._items.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1]) + len(key)
