"""x-portkey-* request headers → RequestContext, parsed once at the edge.

Adding a header means adding it here and only here. Unknown ``x-portkey-*`` headers (the SDKs send
several: package version, runtime, api key …) are tolerated and never forwarded upstream.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from ..access.secrets import KEY_PREFIX
from ..errors import BadRequest
from ..header_rules import fold_header_name, may_forward
from ..jsontext import json_object
from ..types import METADATA_VALUE_LIMIT, RequestContext, public_metadata

__all__ = ["RequestContext", "fold_header_name", "parse_request_headers", "public_metadata"]  # the first and last: types.py

FORWARD_HEADERS = "x-portkey-forward-headers"
# The OpenAI client inside the portkey-ai SDK sends this literal when no credential was given.
_PLACEHOLDER_KEYS = frozenset({"OPENAI_API_KEY", "undefined", ""})


def parse_forward_headers(names: Any, *, source: str = FORWARD_HEADERS) -> tuple[str, ...]:
    """Validate and fold a forward-headers list (header text or config list)."""
    if isinstance(names, str):
        names = names.split(",")
    folded = tuple(dict.fromkeys(fold_header_name(n) for n in names if n and n.strip()))
    for name in folded:
        if name == FORWARD_HEADERS:
            raise BadRequest("forward_headers must not contain the 'x-portkey-forward-headers' header")
        if name.startswith("x-portkey-"):
            raise BadRequest(f"{source}: x-portkey-* headers are never forwarded upstream ({name})")
        if not may_forward(name):  # header_rules.py: the one list
            raise BadRequest(f"{source}: the '{name}' header cannot be forwarded")
    return folded


def parse_metadata(text: str) -> dict[str, str]:
    value = json_object(text, invalid="Invalid x-portkey-metadata header: it must be a JSON object")
    metadata = {}
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise BadRequest(f"Invalid x-portkey-metadata header: value of '{key}' must be a string")
        text_value = item if isinstance(item, str) else orjson.dumps(item).decode()
        if len(text_value) > METADATA_VALUE_LIMIT:
            raise BadRequest(
                f"Invalid x-portkey-metadata header: value of '{key}' is longer than "
                f"{METADATA_VALUE_LIMIT} characters"
            )
        metadata[key] = text_value
    return metadata


def parse_timeout(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise BadRequest("Invalid x-portkey-request-timeout header: a positive number of milliseconds")
    return value


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip().lower() not in {"false", "0", "no", "off"}


def bearer_credential(authorization: str | None) -> str | None:
    """``Authorization: Bearer k`` → ``k``; a non-Bearer value is kept whole (it reaches upstream as is)."""
    if not authorization:
        return None
    scheme, _, rest = authorization.partition(" ")
    key = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
    return None if key in _PLACEHOLDER_KEYS else key


def _take_gateway_key(ctx: RequestContext, header: str | None) -> None:
    """The gateway API key: x-portkey-api-key (the portkey-ai SDK sends it empty when none was given: that
    is no key), else a Bearer credential carrying the key prefix, which is then never forwarded upstream."""
    key = (header or "").strip() or None
    if ctx.api_key is not None and ctx.api_key.startswith(KEY_PREFIX):
        ctx.authorization_consumed = True
        key = key or ctx.api_key
        ctx.api_key = None
    ctx.gateway_key = key


def new_trace_id() -> str:
    """32 hex digits, the first 12 the time in milliseconds (like a UUIDv7): the request log indexes trace
    ids, and ids that grow with time are appended to that index instead of landing on a random page of it
    (measured: a third of the log's database cost per request, on SQLite)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def parse_request_headers(headers: CIMultiDictProxy[str]) -> RequestContext:
    get = headers.get
    ctx = RequestContext(headers=headers, trace_id=get("x-portkey-trace-id") or new_trace_id())
    ctx.provider = (get("x-portkey-provider") or "").strip() or None
    ctx.config = (get("x-portkey-config") or "").strip() or None
    ctx.custom_host = (get("x-portkey-custom-host") or "").strip() or None
    forward = get(FORWARD_HEADERS)
    if forward is not None:
        ctx.forward_headers = parse_forward_headers(forward)
    timeout = get("x-portkey-request-timeout")
    if timeout is not None:
        ctx.request_timeout_ms = parse_timeout(timeout)
    ctx.api_key = bearer_credential(get("authorization"))
    _take_gateway_key(ctx, get("x-portkey-api-key"))
    metadata = get("x-portkey-metadata")
    if metadata:
        ctx.metadata = parse_metadata(metadata)
    ctx.strict_open_ai_compliance = parse_bool(get("x-portkey-strict-open-ai-compliance"))
    ctx.log_bodies = parse_bool(get("x-portkey-debug")) is not False
    ctx.span_id = get("x-portkey-span-id")
    ctx.parent_span_id = get("x-portkey-parent-span-id")
    ctx.span_name = get("x-portkey-span-name")
    ctx.traceparent = get("traceparent")
    return ctx
