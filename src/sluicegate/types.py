"""The request's vocabulary: what one request is made of as it crosses the layers.

Every layer names these types (the edge builds them, the pipeline and the dispatcher pass them on, the
exchange fills them in, telemetry logs them), so they live here, above the pure packages and below
everything that does I/O, and import nothing of the gateway but the provider contract.

  RequestContext   the x-portkey-* headers, parsed once at the edge (server/headers.py)
  Call             one client request as the pipeline and the dispatcher see it
  Prepared         one target's upstream request, ready to send (prepare.py)
  Outcome          what one attempt (or one target, after its retries) produced (upstream/exchange.py)
  AttemptRecord    one upstream attempt, for the request log
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from .header_names import prefixed_stand_in
from .providers.contract import MeasuredUsage, StreamDecoder, Translation

METADATA_VALUE_LIMIT = 128
# A metadata key must stay findable in the request log (?metadata.<key>=, group_by=metadata.<key>). SQLite
# looks a JSON key up as it is written in the stored JSON, so a key that JSON escapes (a control character,
# a quote, a backslash) is never found there, and a NUL or a quote can make the JSON path itself invalid.
METADATA_KEY_RULE = "no control characters, quotes (\") or backslashes (\\)"
_UNFINDABLE_IN_KEY = re.compile('[\x00-\x1f\x7f-\x9f"\\\\]')


def queryable_metadata_key(key: str) -> bool:
    return _UNFINDABLE_IN_KEY.search(key) is None

# x-portkey-cache-status values (and the request log's cache_status column): the pipeline's cache step sets
# one per request; a request without a cache policy (or a cache behind it) is DISABLED. REFRESH: the client
# asked for a fresh answer (x-portkey-cache-force-refresh), which then replaces the stored one.
CACHE_DISABLED, CACHE_HIT, CACHE_MISS, CACHE_REFRESH = "DISABLED", "HIT", "MISS", "REFRESH"
CACHE_SEMANTIC_HIT, CACHE_SEMANTIC_MISS = "SEMANTIC HIT", "SEMANTIC MISS"


# The classes built for every request write their own __init__ (init=False): compiled (setup.py), the one a
# dataclass generates stays interpreted Python, ten times slower to call (tests/test_compiled_rules.py).
@dataclass(slots=True, init=False)
class RequestContext:
    """Everything the gateway reads from the request headers, in one place."""

    headers: CIMultiDictProxy[str]
    trace_id: str
    provider: str | None = None
    config: str | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] | None = None  # None: not given (a config's list may apply)
    request_timeout_ms: int | None = None
    api_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # scalar values as sent (parse_metadata)
    strict_open_ai_compliance: bool | None = None
    log_bodies: bool = True
    span_id: str | None = None
    parent_span_id: str | None = None
    span_name: str | None = None
    traceparent: str | None = None
    cache_namespace: str | None = None  # x-portkey-cache-namespace: shares entries across scopes on purpose
    cache_force_refresh: bool = False  # x-portkey-cache-force-refresh: true
    # The gateway API key (x-portkey-api-key, or an Authorization bearer with the key prefix, or on the
    # Messages routes an x-api-key with it: then that header is consumed, never sent upstream); who it is,
    # once admitted (for the log).
    gateway_key: str | None = field(default=None, repr=False)
    # The (lower-case) names of the headers never forwarded by name: they carried the gateway key, or an SDK's
    # placeholder credential.
    consumed_headers: tuple[str, ...] = ()
    workspace_id: str | None = None
    api_key_id: str | None = None

    def __init__(self, headers: CIMultiDictProxy[str], trace_id: str, provider: str | None = None,
                 config: str | None = None, custom_host: str | None = None,
                 forward_headers: tuple[str, ...] | None = None, request_timeout_ms: int | None = None,
                 api_key: str | None = None, metadata: dict[str, Any] | None = None,
                 strict_open_ai_compliance: bool | None = None, log_bodies: bool = True, span_id: str | None = None,
                 parent_span_id: str | None = None, span_name: str | None = None, traceparent: str | None = None,
                 cache_namespace: str | None = None, cache_force_refresh: bool = False,
                 gateway_key: str | None = None, consumed_headers: tuple[str, ...] = (),
                 workspace_id: str | None = None, api_key_id: str | None = None) -> None:
        self.headers = headers
        self.trace_id = trace_id
        self.provider = provider
        self.config = config
        self.custom_host = custom_host
        self.forward_headers = forward_headers
        self.request_timeout_ms = request_timeout_ms
        self.api_key = api_key
        self.metadata = {} if metadata is None else metadata
        self.strict_open_ai_compliance = strict_open_ai_compliance
        self.log_bodies = log_bodies
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.span_name = span_name
        self.traceparent = traceparent
        self.cache_namespace = cache_namespace
        self.cache_force_refresh = cache_force_refresh
        self.gateway_key = gateway_key
        self.consumed_headers = consumed_headers
        self.workspace_id = workspace_id
        self.api_key_id = api_key_id

    def forwarded_values(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """The incoming values of the headers to forward verbatim, under their real (folded) names.

        A name is found as sent (``x-api-key``, ``x_api_key``) or in the SDKs' ``x-portkey-x-api-key`` form,
        which they use for a custom header the client did not list in its own forward list; absent ones
        are skipped (see header_names.py for the forms a listed name was expanded into).
        """
        get = self.headers.get
        values = []
        for name in names:
            if name in self.consumed_headers:
                # It carried the gateway's own key, or an SDK's placeholder (Bearer OPENAI_API_KEY, DUMMY-KEY):
                # no credential of the client's to forward, nor to win over a target's own.
                continue
            value = get(name)
            if value is None:
                value = get(name.replace("-", "_"))
            if value is None and (stand_in := prefixed_stand_in(name)) is not None:
                value = get(stand_in)
            if value is not None:
                values.append((name, value))
        return values


def metadata_text(value: Any) -> str:
    """How a metadata value is logged: a string as is, any other scalar as its JSON text (5 → "5")."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def metadata_fault(metadata: Mapping[str, Any]) -> str | None:
    """The first thing wrong with request metadata (the x-portkey-metadata header, or a key's or workspace's
    defaults merged under it), in words that follow the caller's prefix; None when nothing is. Every value
    lands in a log row as one flat string, and every key must stay findable there."""
    for key, item in metadata.items():
        if not key or not queryable_metadata_key(key):
            return f"the key {key[:80]!r} must be non-empty, with {METADATA_KEY_RULE}"
        if isinstance(item, (dict, list)):
            return f"value of {key[:80]!r} must be a string, number, boolean or null, not an object or array"
        if len(metadata_text(item)) > METADATA_VALUE_LIMIT:
            return f"value of {key[:80]!r} is longer than {METADATA_VALUE_LIMIT} characters"
    return None


def routing_metadata(ctx: RequestContext, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata for conditional routing, values as sent: the body's ``user`` is copied to ``_user`` unless
    given."""
    metadata = ctx.metadata
    user = body.get("user") if body else None
    if isinstance(user, str) and user and "_user" not in metadata:
        metadata = {**metadata, "_user": user[:METADATA_VALUE_LIMIT]}
    return metadata


def public_metadata(ctx: RequestContext, body: Mapping[str, Any] | None) -> dict[str, str]:
    """Metadata for the request log: the routing view, every value as text."""
    return {key: metadata_text(value) for key, value in routing_metadata(ctx, body).items()}


@dataclass(slots=True, init=False)
class Call:
    """One client request as the dispatcher sees it."""

    ctx: RequestContext
    endpoint: str  # "chat" | "completions" | "embeddings" | "messages" | "count_tokens" | "proxy"
    method: str
    url_tail: str  # proxy: the URL after /v1, query string included; unified endpoints: unused
    body: bytes
    json: dict[str, Any] | None
    stream: bool
    pathname: str = ""  # the request path, for conditional routing (url.pathname)
    model: str | None = None  # the model without its "@slug/" prefix, when the client sent one
    model_slug: str | None = None  # that prefix: the catalog provider the body names
    created: int = 0  # epoch second it arrived: a translated answer's ``created``
    # Usage limits: called once with (prompt, completion) tokens when the answer or stream has ended, from
    # the request log's task (limits/limiter.py Ticket.settle); None when no limit applies.
    on_usage: Callable[[int, int], None] | None = None
    # The catalog provider (slug) whose limits the limits step admitted for the whole request: the
    # dispatcher's per-attempt provider limits (limits/attempts.py) leave it alone, so it counts once.
    limited_provider: str | None = None

    def __init__(self, ctx: RequestContext, endpoint: str, method: str, url_tail: str, body: bytes,
                 json: dict[str, Any] | None, stream: bool, pathname: str = "", model: str | None = None,
                 model_slug: str | None = None, created: int = 0, on_usage: Callable[[int, int], None] | None = None,
                 limited_provider: str | None = None) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.method = method
        self.url_tail = url_tail
        self.body = body
        self.json = json
        self.stream = stream
        self.pathname = pathname
        self.model = model
        self.model_slug = model_slug
        self.created = created
        self.on_usage = on_usage
        self.limited_provider = limited_provider


@dataclass(slots=True, init=False)
class AttemptRecord:
    target_path: str  # the config target's JSON path ("config.targets[1]")
    provider: str | None
    host: str | None
    status: int | None
    latency_ms: float
    retry: int
    error: str | None = None
    # The request as sent (a reference, no copy): the log scrubs every credential the gateway sent, by
    # value, whatever the header's name, and the query's credential-like parameters.
    sent: Prepared | None = None
    # A least-busy choice that led here: policy, the candidates compared and their scores (dispatch.py)
    routing: dict[str, Any] | None = None

    def __init__(self, target_path: str, provider: str | None, host: str | None, status: int | None,
                 latency_ms: float, retry: int, error: str | None = None, sent: Prepared | None = None,
                 routing: dict[str, Any] | None = None) -> None:
        self.target_path = target_path
        self.provider = provider
        self.host = host
        self.status = status
        self.latency_ms = latency_ms
        self.retry = retry
        self.error = error
        self.sent = sent
        self.routing = routing


@dataclass(slots=True, init=False)
class Prepared:
    """An upstream request ready to send: everything resolved, credentials in the headers only."""

    provider: str
    translation: Translation  # how the answer comes back (errors, stream) across the provider's spec
    method: str
    url: str
    host: str  # the checked base URL, safe to show (no credentials): used in messages and logs
    headers: dict[str, str] | CIMultiDict[str]
    body: bytes
    timeout_ms: int | None
    rewrite_errors: bool  # unified endpoints answer errors in the unified envelope; passthrough relays
    timeout_source: str = "header"  # where timeout_ms was set: "header" or "config" (the message names it)
    local_answer: bytes | None = None  # the translation answers itself (count_tokens estimate): nothing is sent

    def __init__(self, provider: str, translation: Translation, method: str, url: str, host: str,
                 headers: dict[str, str] | CIMultiDict[str], body: bytes, timeout_ms: int | None,
                 rewrite_errors: bool, timeout_source: str = "header", local_answer: bytes | None = None) -> None:
        self.provider = provider
        self.translation = translation
        self.method = method
        self.url = url
        self.host = host
        self.headers = headers
        self.body = body
        self.timeout_ms = timeout_ms
        self.rewrite_errors = rewrite_errors
        self.timeout_source = timeout_source
        self.local_answer = local_answer


class UpstreamBody(Protocol):
    """The unread rest of an upstream response (a transport's, see upstream/transport.py)."""

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive; b"" at the end."""
        ...

    def close(self) -> None:
        """Drop the connection (an upstream still generating stops)."""
        ...


@dataclass(slots=True)
class OpenStream:
    """A stream whose start was judged good: the rest is still with the upstream."""

    body: UpstreamBody
    decoder: StreamDecoder  # the same decoder that judged the start relays the rest

    def close(self) -> None:
        self.body.close()


@dataclass(slots=True, init=False)
class Outcome:
    """What one attempt (or one target, after its retries) produced."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | None  # complete body, or the held-back start of a stream as the client gets it
    provider: str | None
    target_path: str  # the config target that answered, for x-portkey-last-used-option-index
    stream: OpenStream | None = None  # an open stream still to relay
    responded: bool = True  # False: no HTTP answer (timeout, connection error, broken stream start)
    retries: int = 0
    gateway_exception: bool = False
    limited: bool = False  # the attempt's provider limits refused it: nothing was sent (dispatch.py)
    measured: MeasuredUsage | None = None  # token counts a translation measured on the answer (for the log)
    deadline_expired: bool = False  # the request's own timeout (header or config) fired: its 408 stands

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes | None, provider: str | None,
                 target_path: str, stream: OpenStream | None = None, responded: bool = True, retries: int = 0,
                 gateway_exception: bool = False, limited: bool = False, measured: MeasuredUsage | None = None,
                 deadline_expired: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.provider = provider
        self.target_path = target_path
        self.stream = stream
        self.responded = responded
        self.retries = retries
        self.gateway_exception = gateway_exception
        self.limited = limited
        self.measured = measured
        self.deadline_expired = deadline_expired

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def verdict_status(self) -> int | None:
        """The status retry and fallback judge by their status lists: the answer's, or the 408 of the
        request's own timeout (Portkey judges it like any answer: not retried by default, a fallback moves on
        unless its ``on_status_codes`` leave 408 out); None when nothing answered at all."""
        return self.status if self.responded or self.deadline_expired else None

    def discard(self) -> None:
        """Drop an outcome that will not be used (closing a held stream frees its connection)."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None
