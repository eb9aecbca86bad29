"""Request-log rows → OpenTelemetry spans in the OTLP/HTTP JSON encoding. Pure functions, no I/O.

A span is built from the row the sink has already derived and scrubbed (rows.py), never from the raw
request: it only reads ids, names, numbers and statuses, so no header, credential or body can reach it.
The encoding follows opentelemetry-proto's JSON mapping: ids are lowercase hex, 64-bit integers and times
are decimal strings, enums are numbers.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

Span = dict[str, Any]

SCOPE = "sluicegate"
SPAN_KIND_SERVER = 2
STATUS_ERROR = 2
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
# GenAI semantic conventions' operation names for our endpoints; "proxy" (passthrough routes) stays as is.
_OPERATIONS = MappingProxyType({"chat": "chat", "messages": "chat", "completions": "text_completion",
                                "embeddings": "embeddings"})


def _valid(value: str | None, pattern: re.Pattern[str]) -> str | None:
    """The value as a lowercase hex id if it is one; all-zero ids are invalid in W3C and OTLP alike."""
    if not value:
        return None
    value = value.strip().lower()
    return value if pattern.fullmatch(value) and value.strip("0") else None


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """W3C ``traceparent`` → (trace id, parent span id), or None when malformed. Version ff is forbidden;
    a future version may append fields, version 00 may not."""
    found = _TRACEPARENT.fullmatch(value.strip()) if value else None
    if found is None:
        return None
    version, trace_id, parent, extra = found.groups()
    if version == "ff" or (version == "00" and extra) or not trace_id.strip("0") or not parent.strip("0"):
        return None
    return trace_id, parent


def trace_id_of(portkey_trace_id: str | None) -> str:
    """x-portkey-trace-id is free text: used as is when it is already an OTLP trace id, else hashed, so
    that every request sent with the same trace id lands in the same OTLP trace."""
    valid = _valid(portkey_trace_id, _HEX32)
    if valid is not None:
        return valid
    digest = hashlib.sha256((portkey_trace_id or "").encode()).hexdigest()[:32]
    return digest if digest.strip("0") else "1".rjust(32, "0")


def random_span_id() -> str:
    while True:  # all-zero is invalid; one chance in 2**64 of a second round
        span_id = os.urandom(8).hex()
        if span_id.strip("0"):
            return span_id


def span_ids(row: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) for a request: a valid traceparent wins over the x-portkey ids."""
    parent: str | None
    traced = parse_traceparent(row.get("traceparent"))
    if traced is not None:
        trace_id, parent = traced
    else:
        trace_id = trace_id_of(row.get("trace_id"))
        parent = _valid(row.get("parent_span_id"), _HEX16)
    span_id = _valid(row.get("span_id"), _HEX16)
    if span_id is None or span_id == parent:  # a span cannot be its own parent
        span_id = random_span_id()
    return trace_id, span_id, parent


def _attribute(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int in Python
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _attributes(row: Mapping[str, Any], attempts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    values = {
        "gen_ai.operation.name": _OPERATIONS.get(row.get("endpoint") or "", row.get("endpoint")),
        "gen_ai.system": row.get("provider"),
        "gen_ai.request.model": row.get("model"),
        "gen_ai.response.model": row.get("model_answered"),
        "gen_ai.usage.input_tokens": row.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": row.get("completion_tokens"),
        "http.request.method": row.get("method"),
        "url.path": row.get("route"),  # the path only: the query string (which may carry keys) is never kept
        "http.response.status_code": row.get("status"),
        "error.type": row.get("error_type"),
        "sluicegate.trace_id": row.get("trace_id"),
        "sluicegate.request_id": row.get("id"),
        "sluicegate.provider_slug": row.get("provider_slug"),
        "sluicegate.stream": row.get("stream"),
        "sluicegate.attempts": len(attempts),
        "sluicegate.retries": row.get("retries"),
        "sluicegate.cost_usd": row.get("cost"),
        "sluicegate.usage_estimated": row.get("usage_estimated") if row.get("prompt_tokens") is not None else None,
    }
    return [_attribute(key, value) for key, value in values.items() if value is not None]


def _name(row: Mapping[str, Any]) -> str:
    """The client's x-portkey-span-name, else GenAI's ``{operation} {model}`` (low cardinality, unlike
    the path of a proxied request)."""
    if row.get("span_name"):
        return row["span_name"]
    operation = _OPERATIONS.get(row.get("endpoint") or "", row.get("endpoint") or "request")
    return f"{operation} {row['model']}" if row.get("model") else operation


def request_span(row: Mapping[str, Any], attempts: list[Mapping[str, Any]]) -> Span:
    trace_id, span_id, parent = span_ids(row)
    start = int(row["created_ms"]) * 1_000_000
    end = start + int(float(row.get("latency_ms") or 0.0) * 1_000_000)
    span: Span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": _name(row),
        "kind": SPAN_KIND_SERVER,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": _attributes(row, attempts),
        "status": {},  # unset: OTel leaves a server span's success status to the backend
    }
    if parent is not None:
        span["parentSpanId"] = parent
    status = int(row.get("status") or 0)
    if not 200 <= status < 300 or row.get("error_type"):
        span["status"] = {"code": STATUS_ERROR, "message": row.get("error_type") or f"HTTP {status}"}
    return span


def payload(spans: list[Span], service_name: str = SCOPE) -> dict[str, Any]:
    """The ExportTraceServiceRequest body for one batch."""
    resource = {"attributes": [_attribute("service.name", service_name)]}
    return {"resourceSpans": [{"resource": resource,
                               "scopeSpans": [{"scope": {"name": SCOPE}, "spans": spans}]}]}


def traces_url(endpoint: str) -> str:
    """``http://collector:4318`` → ``…/v1/traces``; an endpoint that already names the path is kept."""
    endpoint = endpoint.strip().rstrip("/")
    if not re.match(r"https?://[^/]", endpoint):
        raise ValueError("SLUICEGATE_OTLP_ENDPOINT must be an http:// or https:// URL")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"
