"""The simple cache: an exact key (key.py) over a backend (memory, the store, Redis), behind the pipeline's
``ResponseCache`` protocol.

Only successful (2xx) answers are stored, a stream once it ended cleanly (recording.py). Writes run as tasks
off the request path; a backend that fails is a miss (logged), never a failed request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ..config.model import CachePolicy, Node
from ..pipeline import CacheHit, RequestState
from ..providers.contract import MeasuredUsage
from ..types import CACHE_HIT, CACHE_MISS, Outcome
from .entry import Entry, kept_headers
from .key import ResolveProvider, TreeReads, cacheable, no_catalog, simple_key, tree_reads
from .recording import RecordingDecoder

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 7 * 24 * 3600  # a cache block without max_age (Portkey's default)
MAX_MAX_AGE_S = 90 * 24 * 3600
_TREES_KEPT = 1024  # distinct config trees whose identity is remembered (the config cache bounds them too)


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, data: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


def max_age_s(policy: CachePolicy) -> int:
    return min(policy.max_age_s or DEFAULT_MAX_AGE_S, MAX_MAX_AGE_S)


class SimpleCache:
    def __init__(self, backend: CacheBackend, *, entry_max_bytes: int, resolve: ResolveProvider = no_catalog) -> None:
        self.backend = backend
        self.resolve = resolve  # the Model Catalog's current provider for a slug (part of the key)
        self._entry_max_bytes = entry_max_bytes
        self._trees: dict[int, tuple[object, TreeReads]] = {}  # id(root) → (root, its reads): root kept, id stable
        self._pending: set[asyncio.Task[None]] = set()

    def covers(self, state: RequestState) -> bool:
        return cacheable(state.call)

    def key_for(self, state: RequestState) -> str | None:
        if not cacheable(state.call):
            return None
        return simple_key(state.cache_scope, state.call, self.tree_reads(state.root), self.resolve)

    async def lookup(self, state: RequestState, policy: CachePolicy) -> CacheHit | None:
        key = self.key_for(state)
        if key is None:
            return None
        try:
            data = await self.backend.get(key)
        except Exception as exc:  # a backend outage is a miss, not a failed request
            log.warning("response cache lookup failed: %s", type(exc).__name__)
            return None
        return CacheHit(Entry.decode(data).outcome(), CACHE_HIT) if data is not None else None

    def miss_status(self, policy: CachePolicy) -> str:
        return CACHE_MISS

    def store(self, state: RequestState, policy: CachePolicy, outcome: Outcome) -> None:
        if not (outcome.ok and outcome.responded):
            return
        key = self.key_for(state)
        if key is None:
            return
        ttl = max_age_s(policy)
        headers = kept_headers(outcome.headers)
        if outcome.stream is None:
            if outcome.body is not None and len(outcome.body) <= self._entry_max_bytes:
                entry = Entry(outcome.status, headers, outcome.body, outcome.provider, outcome.target_path, False,
                              outcome.measured)
                self._put(key, entry.encode(), ttl)
            return

        def stored(data: bytes, usage: MeasuredUsage | None) -> None:
            self._put(key, Entry(outcome.status, headers, data, outcome.provider, outcome.target_path,
                                 True, usage).encode(), ttl)

        stream = outcome.stream
        stream.decoder = RecordingDecoder(stream.decoder, outcome.body or b"", self._entry_max_bytes, stored)

    async def drain(self) -> None:
        """Wait for the writes under way (tests; shutdown)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.backend.close()

    def _put(self, key: str, data: bytes, ttl_s: int) -> None:
        self.track(asyncio.get_running_loop().create_task(self.backend.put(key, data, ttl_s)))

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a write task until it is done (drain waits for it; a failure is logged)."""
        self._pending.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("response cache write failed: %s", type(task.exception()).__name__)

    def tree_reads(self, root: Node | None) -> TreeReads:
        known = self._trees.get(id(root))
        if known is not None and known[0] is root:
            return known[1]
        if len(self._trees) >= _TREES_KEPT:
            self._trees.clear()
        reads = tree_reads(root)
        self._trees[id(root)] = (root, reads)
        return reads
