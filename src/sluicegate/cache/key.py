"""The simple cache's key: a SHA-256 over everything that changes the answer, and nothing that does not.

Covered: the scope (the namespace the client named within the caller's workspace, else the caller's scope
that admission set), the
endpoint, the stream flag (a stream is stored as events, a JSON answer as JSON: they never stand in for
each other), the config tree the request runs (providers, hosts, inline keys, override_params: the
resolved targets), what else of the request that tree reads (the metadata its conditions query, which
picks the target; the headers its targets forward, which the upstream sees), the provider, host and
credential the request itself names, its ``x-portkey-strict-open-ai-compliance`` (a translated answer's
shape), every catalog provider the request may reach as it stands now (its
host, credential, allow-list and forwarded headers with the request's values for them: a provider edited,
narrowed or deleted no longer matches what was stored under its slug), the protocol headers a spec takes
from the client (``anthropic-version``, ``anthropic-beta``), the model, and the whole parsed body except
``stream``, with its keys sorted. The credentials enter only through the hash: a key holds no secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..config.model import Group, Node, targets
from ..prepare import CatalogEntry
from ..providers.registry import SPECS
from ..types import Call, routing_metadata

KEY_VERSION = b"sluicegate-cache-v1"
CACHEABLE_ENDPOINTS = frozenset({"chat", "completions", "embeddings"})


def cacheable(call: Call) -> bool:
    """Only the unified endpoints' JSON requests: a passthrough request's meaning is not ours to judge."""
    return call.json is not None and call.endpoint in CACHEABLE_ENDPOINTS


@dataclass(frozen=True, slots=True)
class TreeReads:
    """A config tree as the key sees it: its identity, and what of a request besides the body it reads."""

    identity: bytes
    metadata_keys: tuple[str, ...] = ()  # the metadata keys its conditions query: they pick a request's target
    forwarded: tuple[str, ...] = ()  # the headers its targets forward upstream
    slugs: tuple[str, ...] = ()  # the catalog providers its targets name (``@slug``)


class CatalogProvider(CatalogEntry, Protocol):
    """What of a catalog provider can change an answer (``catalog.ResolvedProvider``): what a request is built
    from, and the allow-list entry its host is reached under."""

    @property
    def allow_entry(self) -> str | None: ...


ResolveProvider = Callable[[str], "CatalogProvider | None"]


def no_catalog(slug: str) -> None:
    return None


def request_parts(scope: str, call: Call, tree: TreeReads, resolve: ResolveProvider = no_catalog) -> list[Any]:
    """What besides the body tells two requests apart. ``resolve``: the catalog's current provider for a slug."""
    ctx = call.ctx
    # A namespace shares entries between the keys that name it, within their workspace: never across.
    scoped = ["namespace", ctx.workspace_id, ctx.cache_namespace] if ctx.cache_namespace else ["scope", scope]
    parts = [*scoped, call.endpoint, call.stream, tree.identity.hex(), ctx.provider, ctx.custom_host, ctx.api_key,
             call.model_slug, call.model]
    if tree.metadata_keys:  # two requests that differ here may run different targets
        metadata = routing_metadata(ctx, call.json)
        parts.append(["metadata", *([key, metadata.get(key)] for key in tree.metadata_keys)])
    if ctx.strict_open_ai_compliance is not None:
        # The header shapes a translated answer (a config's own setting is in the tree's identity).
        parts.append(["strict", ctx.strict_open_ai_compliance])
    forwarded = tree.forwarded + (ctx.forward_headers or ())  # the config's list, and the request's own
    if forwarded:  # the upstream sees these: they may change its answer
        parts.append(["forwarded", ctx.forwarded_values(tuple(dict.fromkeys(forwarded)))])
    slugs = {slug for slug in (*tree.slugs, ctx.provider, call.model_slug) if slug and slug.startswith("@")}
    if slugs:
        parts.append(["catalog", *(_catalog_part(slug, resolve(slug), call) for slug in sorted(slugs))])
    # Every spec's, not only the target's: which spec answers is the tree's choice, and this is cheap.
    parts.append(["protocol", *(spec.client_headers(call.endpoint, ctx.headers) for spec in SPECS.values())])
    return parts


def _catalog_part(slug: str, provider: CatalogProvider | None, call: Call) -> list[Any]:
    if provider is None:  # unknown now: never the answer stored while it existed
        return [slug, None]
    return [slug, provider.spec, provider.custom_host, provider.headers, provider.models, provider.default_model,
            provider.allow_entry, call.ctx.forwarded_values(provider.forward_headers)]


def body_without_stream(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "stream"}


def simple_key(scope: str, call: Call, tree: TreeReads, resolve: ResolveProvider = no_catalog) -> str:
    assert call.json is not None
    digest = hashlib.sha256(KEY_VERSION)
    digest.update(key_bytes(request_parts(scope, call, tree, resolve)))
    digest.update(b"\0")
    digest.update(key_bytes(body_without_stream(call.json)))
    return digest.hexdigest()


def key_bytes(value: Any) -> bytes:
    """``value`` (JSON types) as the bytes a key digests: its JSON, keys sorted. A header value whose bytes
    were not UTF-8 arrives as lone surrogates, which JSON cannot hold: such a value is digested as its repr,
    behind a 0xFF byte that no UTF-8 text (no JSON) contains, so the two forms never meet."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return b"\xff" + repr(value).encode("utf-8", "surrogateescape")


def tree_reads(tree: Node | None) -> TreeReads:
    """A config tree (frozen dataclasses, compiled from its text) as the key sees it: equal trees, equal
    digests; the metadata keys its conditions name (``metadata.tier.level`` reads ``tier``), the headers its
    targets forward."""
    identity = hashlib.sha256(repr(tree).encode()).digest()
    if tree is None:
        return TreeReads(identity)
    metadata_keys: dict[str, None] = {}
    for group in _groups(tree):
        for condition in group.strategy.conditions:
            for field in _fields(condition.query):
                root, _, rest = field.partition(".")
                if root == "metadata" and rest:
                    metadata_keys[rest.partition(".")[0]] = None
    forwarded = dict.fromkeys(name for target in targets(tree) for name in target.forward_headers)
    slugs = {target.provider for target in targets(tree) if target.provider and target.provider.startswith("@")}
    return TreeReads(identity, tuple(sorted(metadata_keys)), tuple(sorted(forwarded)), tuple(sorted(slugs)))


def _groups(node: Node) -> Iterator[Group]:
    if isinstance(node, Group):
        yield node
        for child in node.children:
            yield from _groups(child)


def _fields(query: Any) -> Iterator[str]:
    """The fields a condition's query reads, through ``$and`` / ``$or``."""
    if not isinstance(query, Mapping):
        return
    for key, value in query.items():
        if key in ("$and", "$or"):
            for sub in value if isinstance(value, list) else ():
                yield from _fields(sub)
        elif not key.startswith("$"):
            yield key
