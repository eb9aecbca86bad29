"""The semantic cache: the simple cache's exact match first, then the nearest stored prompt in the same
bucket whose similarity reaches the threshold and which the guard (guard.py) does not refuse.

A bucket is everything in the exact key but the text of the last user turn: the scope, route, model, every
other body parameter, the system prompt, the assistant turns, the earlier user turns whole and the last
user turn's other fields (``name`` …) must match exactly. Only the last user turn's text is embedded, and
only when the encoder sees all of it: a text longer than MAX_TEXT_CHARS, or one the encoder reports it
would cut or read as [UNK] (``embed`` returns None), is served by the exact match alone. Requests that
offer tools (in their body or through the config's ``override_params``), and answers that call one
(``tool_calls``, ``function_call``), are not indexed: a tool call acts, and acting on a neighbour's
question is not a cache hit. ``embed`` is async: the local encoder runs in a worker thread, never on the
event loop; a provider's is an upstream request (provider.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from ...config.model import CachePolicy, Node, targets
from ...pipeline import CacheHit, RequestState
from ...types import CACHE_MISS, CACHE_SEMANTIC_HIT, CACHE_SEMANTIC_MISS, Call, Outcome
from ..entry import Entry
from ..key import KEY_VERSION, ResolveProvider, TreeReads, body_without_stream, cacheable, key_bytes, request_parts
from ..simple import SimpleCache
from .guard import contradicts
from .index import SemanticIndex
from .wordpiece import max_chars

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.95
INDEX_WAIT_S = 5.0  # the longest a lookup waits for an earlier answer of its bucket to be indexed
# The longest text compared: what the local encoder's window can hold at most (wordpiece.max_chars). Longer
# texts get the exact match alone, whatever the encoder, and are never handed to it.
MAX_TEXT_CHARS = max_chars()
RECENT_VECTORS = 256  # a lookup's embedding, kept for the same request's indexing after its answer


def last_user_turn(body: dict[str, Any]) -> int | None:
    """The index of the last user message, when its text is what to compare: a non-empty string no longer
    than MAX_TEXT_CHARS, with every user message plain text. None: no semantic match for this request."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    last = None
    for index, message in enumerate(messages):
        if _is_user(message):
            if not isinstance(message.get("content"), str):
                return None
            last = index
    if last is None or not messages[last]["content"] or len(messages[last]["content"]) > MAX_TEXT_CHARS:
        return None
    return last


def _is_user(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def bucket_key(scope: str, call: Call, tree: TreeReads, resolve: ResolveProvider, last: int) -> str:
    """The exact key without the text of the last user turn (message ``last``); all else is in it."""
    assert call.json is not None
    body = body_without_stream(call.json)
    messages = list(body["messages"])
    messages[last] = {k: v for k, v in messages[last].items() if k != "content"}
    body["messages"] = messages
    digest = hashlib.sha256(KEY_VERSION + b"/semantic")
    digest.update(key_bytes(request_parts(scope, call, tree, resolve)))
    digest.update(key_bytes(body))
    return digest.hexdigest()


def _offers_tools(call: Call, root: Node | None) -> bool:
    """Whether the request offers tools as the upstream gets it: in the client's body, or added by the
    ``override_params`` of any target the config may route it to (prepare.py's _edited_body)."""
    bodies = [call.json or {}, *(t.override_params for t in targets(root))] if root is not None else [call.json or {}]
    return any(body.get("tools") or body.get("functions") for body in bodies)


def calls_a_tool(body: bytes) -> bool:
    """An answer (JSON or a recorded stream) that calls a tool: ``tool_calls`` or the legacy ``function_call``.
    Both names only ever appear as keys here: inside a string, JSON escapes the quotes around them."""
    return b'"tool_calls"' in body or b'"function_call"' in body


class SemanticCache:
    def __init__(self, exact: SimpleCache, embed: Callable[[str], Awaitable[Any]], *,
                 threshold: float = DEFAULT_THRESHOLD,
                 index: SemanticIndex | None = None) -> None:
        self.exact = exact
        self._embed = embed
        self.threshold = threshold
        self.index = index or SemanticIndex()
        self._indexing: dict[str, set[asyncio.Task[None]]] = {}  # bucket → prompts being embedded for it
        self._recent: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (bucket, text) → its lookup's vector

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
        if vector is None:  # the encoder would not see all of the text: the exact match alone
            return None
        self._recent[(bucket, text)] = vector
        while len(self._recent) > RECENT_VECTORS:
            self._recent.popitem(last=False)
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
        if policy.mode == "semantic" and outcome.ok and outcome.responded and calls_a_tool(outcome.body or b""):
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
        vector = self._recent.pop((bucket, text), None)
        if vector is None:
            vector = await self._embed(text)
        if vector is not None:
            self.index.add(bucket, vector, text, key)

    def _semantic_request(self, state: RequestState) -> tuple[str, str] | None:
        call = state.call
        if not cacheable(call) or call.endpoint != "chat" or _offers_tools(call, state.root):
            return None
        assert call.json is not None
        last = last_user_turn(call.json)
        if last is None:
            return None
        bucket = bucket_key(state.cache_scope, call, self.exact.tree_reads(state.root), self.exact.resolve, last)
        return bucket, call.json["messages"][last]["content"]



