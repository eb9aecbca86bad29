"""The simple cache's key: a SHA-256 over everything that changes the answer, and nothing that does not.

Covered: the scope (the namespace the client named within the caller's workspace, else the caller's scope
that admission set), the
endpoint, the stream flag (a stream is stored as events, a JSON answer as JSON: they never stand in for
each other), the config tree the request runs (providers, hosts, inline keys, override_params: the
resolved targets), the provider, host and credential the request itself names, the model, and the whole
parsed body except ``stream``, with its keys sorted. The credentials enter only through the hash: a key
holds no secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from ..types import Call

KEY_VERSION = b"sluicegate-cache-v1"
CACHEABLE_ENDPOINTS = frozenset({"chat", "completions", "embeddings"})


def cacheable(call: Call) -> bool:
    """Only the unified endpoints' JSON requests: a passthrough request's meaning is not ours to judge."""
    return call.json is not None and call.endpoint in CACHEABLE_ENDPOINTS


def request_parts(scope: str, call: Call, tree: bytes) -> list[Any]:
    """What besides the body tells two requests apart (``tree``: the config tree's identity, tree_identity)."""
    ctx = call.ctx
    # A namespace shares entries between the keys that name it, within their workspace: never across.
    scoped = ["namespace", ctx.workspace_id, ctx.cache_namespace] if ctx.cache_namespace else ["scope", scope]
    return [*scoped, call.endpoint, call.stream, tree.hex(), ctx.provider, ctx.custom_host, ctx.api_key,
            call.model_slug, call.model]


def body_without_stream(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "stream"}


def simple_key(scope: str, call: Call, tree: bytes) -> str:
    assert call.json is not None
    digest = hashlib.sha256(KEY_VERSION)
    digest.update(orjson.dumps(request_parts(scope, call, tree), option=orjson.OPT_SORT_KEYS))
    digest.update(b"\0")
    digest.update(orjson.dumps(body_without_stream(call.json), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def tree_identity(tree: object) -> bytes:
    """A config tree (frozen dataclasses, compiled from its text) as a digest: equal trees, equal digests."""
    return hashlib.sha256(repr(tree).encode()).digest()
