"""x-portkey-* request headers → RequestContext, parsed once at the edge.

Adding a header means adding it here and only here. Unknown ``x-portkey-*`` headers (the SDKs send
several: package version, runtime, api key …) are tolerated and never forwarded upstream.
"""

from __future__ import annotations

from typing import Any

from multidict import CIMultiDictProxy

from .. import numerals
from ..access.secrets import KEY_PREFIX
from ..config.schema import MAX_TIMEOUT_MS
from ..errors import BadRequest, is_utf8, sendable
from ..header_names import HEADER_TOKEN, auth_scheme_split, expand, may_forward
from ..ids import time_sorted_id
from ..jsontext import json_object
from ..types import RequestContext, metadata_fault, metadata_text, public_metadata, routing_metadata

# RequestContext and the metadata views are the request's vocabulary (types.py); re-exported for older imports.
__all__ = ["RequestContext", "metadata_text", "parse_request_headers", "public_metadata", "routing_metadata"]

FORWARD_HEADERS = "x-portkey-forward-headers"
STRICT = "x-portkey-strict-open-ai-compliance"
DEBUG = "x-portkey-debug"
FORCE_REFRESH = "x-portkey-cache-force-refresh"
# The OpenAI client inside the portkey-ai SDK sends these literals when no credential was given (the Python
# package's OPENAI_API_KEY, the Node package's DUMMY-KEY).
_PLACEHOLDER_KEYS = frozenset({"OPENAI_API_KEY", "DUMMY-KEY", "undefined", ""})
VIRTUAL_KEY = "x-portkey-virtual-key"


def parse_forward_headers(names: Any, *, source: str = FORWARD_HEADERS) -> tuple[str, ...]:
    """Validate and fold a forward-headers list (header text or config list)."""
    if isinstance(names, str):
        names = names.split(",")
    listed = [n.strip() for n in names if n and n.strip()]
    for name in listed:  # as a config's forward_headers are checked: "bad name" and "é" were taken silently
        if not HEADER_TOKEN.fullmatch(name):
            raise BadRequest(f"{source}: Invalid header name: {name[:64]!r}")
    folded = expand(listed)
    for name in folded:
        if name == FORWARD_HEADERS:
            raise BadRequest("forward_headers must not contain the 'x-portkey-forward-headers' header")
        if name.startswith("x-portkey-"):
            raise BadRequest(f"{source}: x-portkey-* headers are never forwarded upstream ({name})")
        if not may_forward(name):  # header_names.py: the one list
            raise BadRequest(f"{source}: the '{name}' header cannot be forwarded")
    return folded


def parse_metadata(text: str) -> dict[str, Any]:
    """A JSON object of scalar values, kept as sent: like Portkey, ``{"n": 5}`` is accepted and conditional
    routing compares the number 5 (``$eq: 5``, ``$gt: 3``). The log stores each value as text (``"5"``);
    nested objects and arrays are refused, since a log value is one flat string."""
    if not is_utf8(text):
        raise BadRequest("Invalid x-portkey-metadata header: it is not UTF-8 text")
    value = json_object(text, invalid="Invalid x-portkey-metadata header: it must be a JSON object")
    fault = metadata_fault(value)
    if fault is not None:
        raise BadRequest(f"Invalid x-portkey-metadata header: {fault}")
    return value


def parse_timeout(text: str) -> int:
    """Whole milliseconds in [1, MAX_TIMEOUT_MS]; ``inf``, ``nan``, ``1e309`` and the like are refused here,
    before they can overflow the event loop's timer (a 500) further down."""
    value = numerals.decimal(text)  # not "1_000", "١٢" or "nan", which float() reads
    if value is None or not 1 <= value <= MAX_TIMEOUT_MS:
        raise BadRequest("Invalid x-portkey-request-timeout header: a number of milliseconds from 1 to "
                         f"{MAX_TIMEOUT_MS}")
    return int(value)


_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


def parse_bool(text: str | None, name: str) -> bool | None:
    """A yes/no header (absent or empty: None). Anything else is a 400 naming it: "maybe" was taken as true,
    which for x-portkey-cache-force-refresh meant a dispatch the client did not ask for."""
    if text is None or not (word := text.strip().lower()):
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise BadRequest(f"{name} takes true or false (or 1/0, yes/no, on/off), not '{sendable(text.strip()[:32])}'")


def bearer_credential(authorization: str | None) -> str | None:
    """``Authorization: Bearer k`` → ``k``; a non-Bearer value is kept whole (it reaches upstream as is)."""
    if not authorization:
        return None
    scheme, rest = auth_scheme_split(authorization)
    key = rest if scheme.lower() == "bearer" else authorization.strip()
    return None if key in _PLACEHOLDER_KEYS else key


def _take_gateway_key(ctx: RequestContext, header: str | None) -> None:
    """The gateway API key: x-portkey-api-key (the portkey-ai SDK sends it empty when none was given: that
    is no key), else a Bearer credential carrying the key prefix, which is then never forwarded upstream."""
    key = (header or "").strip() or None
    if ctx.api_key is not None and ctx.api_key.startswith(KEY_PREFIX):
        ctx.consumed_headers = ("authorization",)
        key = key or ctx.api_key
        ctx.api_key = None
    ctx.gateway_key = key


def take_x_api_key(ctx: RequestContext) -> None:
    """``x-api-key``, where the anthropic SDKs (and Claude Code) put their ``api_key``, on the Messages routes:
    the upstream credential when there is no Authorization one, unless it carries the key prefix. Then it is
    the gateway API key, as a Bearer one is (x-portkey-api-key still wins), and is consumed: it was sent
    upstream as the credential, a gateway key handed to the model server."""
    value = bearer_credential(ctx.headers.get("x-api-key"))
    if value is not None and value.startswith(KEY_PREFIX):
        ctx.consumed_headers = (*ctx.consumed_headers, "x-api-key")
        ctx.gateway_key = ctx.gateway_key or value
    elif ctx.api_key is None:
        ctx.api_key = value


def _provider(named: str | None, virtual_key: str) -> str | None:
    """The provider a request names that sent ``x-portkey-virtual-key`` (the SDKs' ``virtualKey`` option:
    Portkey's older name for a catalog provider, ``my-llm`` meaning ``@my-llm``) beside the provider header's
    ``named``, if any."""
    slug = virtual_key.strip().removeprefix("@")
    if not slug:
        return named
    if named is not None and named != "@" + slug:
        raise BadRequest(f"{VIRTUAL_KEY} and x-portkey-provider name different providers: send one of them")
    return "@" + slug


def parse_request_headers(headers: CIMultiDictProxy[str]) -> RequestContext:
    ctx = traced_context(headers)
    read_request_headers(ctx)
    return ctx


def traced_context(headers: CIMultiDictProxy[str]) -> RequestContext:
    """The request's context with only its trace id (the client's, or a new one): known before any header
    can be refused, so that a refusal still echoes it and the request log stores it."""
    return RequestContext(headers=headers, trace_id=headers.get("x-portkey-trace-id") or time_sorted_id())


def read_request_headers(ctx: RequestContext) -> None:
    """The rest of ``ctx`` from its headers; a BadRequest for a header that says nothing valid. The
    credentials are read first: a refusal's log row is scrubbed of them like any other's."""
    get = ctx.headers.get
    authorization = get("authorization")
    ctx.api_key = bearer_credential(authorization)
    if authorization is not None and ctx.api_key is None:  # an SDK's placeholder: not to be forwarded
        ctx.consumed_headers = ("authorization",)
    _take_gateway_key(ctx, get("x-portkey-api-key"))
    virtual_key = get(VIRTUAL_KEY)
    provider = (get("x-portkey-provider") or "").strip() or None
    ctx.provider = provider if virtual_key is None else _provider(provider, virtual_key)
    ctx.config = (get("x-portkey-config") or "").strip() or None
    ctx.custom_host = (get("x-portkey-custom-host") or "").strip() or None
    forward = get(FORWARD_HEADERS)
    if forward is not None:
        ctx.forward_headers = parse_forward_headers(forward)
    timeout = get("x-portkey-request-timeout")
    if timeout is not None:
        ctx.request_timeout_ms = parse_timeout(timeout)
    metadata = get("x-portkey-metadata")
    if metadata:
        ctx.metadata = parse_metadata(metadata)
    ctx.strict_open_ai_compliance = parse_bool(get(STRICT), STRICT)
    ctx.log_bodies = parse_bool(get(DEBUG), DEBUG) is not False
    ctx.span_id = get("x-portkey-span-id")
    ctx.parent_span_id = get("x-portkey-parent-span-id")
    ctx.span_name = get("x-portkey-span-name")
    ctx.traceparent = get("traceparent")
    ctx.cache_namespace = (get("x-portkey-cache-namespace") or "").strip() or None
    ctx.cache_force_refresh = parse_bool(get(FORCE_REFRESH), FORCE_REFRESH) is True
