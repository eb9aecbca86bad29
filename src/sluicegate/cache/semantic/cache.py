"""The semantic cache: the simple cache's exact match first, then the nearest stored prompt in the same
bucket whose similarity reaches the threshold and which the guard (guard.py) does not refuse.

A bucket is everything in the exact key but the user turns' text: the scope, route, model, every other
body parameter and the system prompt must match exactly. Only the user turns are embedded. Requests that
offer tools, and answers that call one, are not indexed: a tool call acts, and acting on a neighbour's
question is not a cache hit. ``embed`` is async: the local encoder runs in a worker thread, never on the
event loop; a provider's is an upstream request (provider.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ...config.model import CachePolicy
from ...pipeline import CacheHit, RequestState
from ...types import CACHE_MISS, CACHE_SEMANTIC_HIT, CACHE_SEMANTIC_MISS, Call, Outcome
from ..entry import Entry
from ..key import KEY_VERSION, ResolveProvider, TreeReads, body_without_stream, cacheable, key_bytes, request_parts
from ..simple import SimpleCache
from .guard import contradicts
from .index import SemanticIndex

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.95
INDEX_WAIT_S = 5.0  # the longest a lookup waits for an earlier answer of its bucket to be indexed


def user_text(body: dict[str, Any]) -> str | None:
    """The user turns' text, one per line; None when there is none to compare (or not only text)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    parts = []
    for message in messages:
        if _is_user(message):
            content = message.get("content")
            if not isinstance(content, str):
                return None
            parts.append(content)
    return "\n".join(parts) or None


def _is_user(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def bucket_key(scope: str, call: Call, tree: TreeReads, resolve: ResolveProvider) -> str:
    assert call.json is not None
    body = body_without_stream(call.json)
    body["messages"] = [{"role": "user"} if _is_user(m) else m for m in body["messages"]]
    digest = hashlib.sha256(KEY_VERSION + b"/semantic")
    digest.update(key_bytes(request_parts(scope, call, tree, resolve)))
    digest.update(key_bytes(body))
    return digest.hexdigest()


def _offers_tools(call: Call) -> bool:
    return bool(call.json and (call.json.get("tools") or call.json.get("functions")))


class SemanticCache:
    def __init__(self, exact: SimpleCache, embed: Callable[[str], Awaitable[Any]], *,
                 threshold: float = DEFAULT_THRESHOLD,
                 index: SemanticIndex | None = None) -> None:
        self.exact = exact
        self._embed = embed
        self.threshold = threshold
        self.index = index or SemanticIndex()
        self._indexing: dict[str, set[asyncio.Task[None]]] = {}  # bucket → prompts being embedded for it

    def covers(self, state: RequestState) -> bool:
        return self.exact.covers(state)

    async def lookup(self, state: RequestState, policy: CachePolicy) -> CacheHit | None:
        hit = await self.exact.lookup(state, policy)
        if hit is not None or policy.mode != "semantic":
            return hit
        found = self._semantic_request(state)
        if found is None:
            return None
        bucket, text = found
        try:
            vector = await self._embed(text)
        except Exception as exc:  # an embeddings outage is a miss, never a failed request
            log.warning("semantic cache: embedding failed: %s", type(exc).__name__)
            return None
        pending = self._indexing.get(bucket)
        if pending:  # an answer in this bucket is being indexed: wait for it, so a paraphrase sent right after
            await asyncio.wait(set(pending), timeout=INDEX_WAIT_S)  # its original finds it
        for neighbour in self.index.nearest(bucket, vector, self.threshold):
            if contradicts(text, neighbour.text):
                continue
            data = await self.exact.backend.get(neighbour.key)
            if data is not None:
                return CacheHit(Entry.decode(data).outcome(), CACHE_SEMANTIC_HIT)
        return None

    def miss_status(self, policy: CachePolicy) -> str:
        return CACHE_SEMANTIC_MISS if policy.mode == "semantic" else CACHE_MISS

    def store(self, state: RequestState, policy: CachePolicy, outcome: Outcome) -> None:
        if policy.mode == "semantic" and outcome.ok and outcome.responded and b'"tool_calls"' in (outcome.body or b""):
            return  # an answer that calls a tool is never cached in semantic mode
        self.exact.store(state, policy, outcome)
        found = self._semantic_request(state) if policy.mode == "semantic" and outcome.ok else None
        key = self.exact.key_for(state)
        if found is not None and key is not None:
            bucket, text = found
            task = asyncio.get_running_loop().create_task(self._index(bucket, text, key))
            self._indexing.setdefault(bucket, set()).add(task)
            task.add_done_callback(lambda done: self._indexed(bucket, done))
            self.exact.track(task)

    async def drain(self) -> None:
        await self.exact.drain()

    async def close(self) -> None:
        await self.exact.close()

    def key_for(self, state: RequestState) -> str | None:
        return self.exact.key_for(state)

    def _indexed(self, bucket: str, task: asyncio.Task[None]) -> None:
        pending = self._indexing.get(bucket)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._indexing[bucket]

    async def _index(self, bucket: str, text: str, key: str) -> None:
        vector = await self._embed(text)
        self.index.add(bucket, vector, text, key)

    def _semantic_request(self, state: RequestState) -> tuple[str, str] | None:
        call = state.call
        if not cacheable(call) or call.endpoint != "chat" or _offers_tools(call):
            return None
        assert call.json is not None
        text = user_text(call.json)
        if text is None:
            return None
        return bucket_key(state.cache_scope, call, self.exact.tree_reads(state.root), self.exact.resolve), text



