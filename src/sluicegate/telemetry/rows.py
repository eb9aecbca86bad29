"""RequestRecord → database rows: one for the request, one per upstream attempt.

Runs once per record: with the write-ahead journal (the default) on the request path, before the answer's
last bytes (Sink.seal); without it, in the sink's drain task. bench/rows_cost.py measures what it costs.
This is where the answer is parsed (once) for usage, model and error, the cost is priced, bodies are cut to
the size cap, and every stored text is scrubbed of the request's secrets and made storable (storable.py:
no NUL, no lone surrogates): the rows it returns are safe to write, and to journal or spool to a local file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from . import usage as usage_mod
from .pricing import PriceTable
from .record import TAIL_CHUNKS, RequestRecord
from .redact import Redactor, scrub
from .storable import storable_entry

Row = dict[str, Any]
MetadataOf = Callable[[Any, Any], Mapping[str, str]]  # (ctx, parsed body) → metadata incl. "_user"

_TEXT_TYPES = ("application/json", "text/", "application/x-ndjson", "application/problem+json")
_SHORT = 256  # column width of names (model, provider, span name …)
_ERROR_LIMIT = 2048


class Lookups(Protocol):
    """What the rest of the gateway knows that a row needs; app.py provides it (catalog, configs)."""

    def provider(self, provider_id: str) -> tuple[str | None, tuple[str, ...]]:
        """For a catalog slug: the API spec behind it and its credential values (to scrub); else (None, ())."""

    def config_secrets(self, config: str) -> tuple[str, ...]:
        """Credentials written inline in a Gateway Config header (to scrub)."""

    def config_forward_names(self, config: str) -> tuple[str, ...]:
        """Every header name a Gateway Config's targets forward (their values are scrubbed too)."""


class NoLookups:
    def provider(self, provider_id: str) -> tuple[str | None, tuple[str, ...]]:
        return None, ()

    def config_secrets(self, config: str) -> tuple[str, ...]:
        return ()

    def config_forward_names(self, config: str) -> tuple[str, ...]:
        return ()


def new_id(created_ms: int) -> str:
    """Sortable by time (48-bit milliseconds first) and unique (80 random bits): cursor order and idempotent
    replays both rely on it."""
    return f"{created_ms:012x}{os.urandom(10).hex()}"


@dataclass(slots=True)
class Derived:
    """What the answer says, parsed once."""

    usage: usage_mod.Usage | None = None
    model: str | None = None
    error_type: str | None = None
    error_message: str | None = None


class RowBuilder:
    def __init__(self, prices: PriceTable, body_cap: int, metadata_of: MetadataOf,
                 lookups: Lookups | None = None) -> None:
        self._prices = prices
        self._cap = body_cap
        self._metadata_of = metadata_of
        self._lookups = lookups or NoLookups()
        self._redact = Redactor()

    def build(self, record: RequestRecord) -> tuple[Row, list[Row]]:
        """The request's row and its attempts' rows, storable."""
        return self.build_line(record)[0]

    def build_line(self, record: RequestRecord) -> tuple[tuple[Row, list[Row]], bytes | None]:
        """``build``, and the rows' JSON line (storable.py; None when they cannot be JSON), made anyway to
        check that they are storable: the journal writes it."""
        ctx, call, outcome, attempts = record.ctx, record.call, record.outcome, record.attempts or ()
        created_ms = int(record.started_at * 1000)
        provider, slug, secrets = self._provider_and_secrets(record)
        answer_type = _content_type(record.outcome.headers) if record.outcome is not None else ""
        derived = self._derive(record, answer_type)
        model = _model(call)
        metadata = self._metadata_of(ctx, call.json if call is not None else None) if ctx is not None else {}
        row: Row = {
            "id": new_id(created_ms),
            "created_ms": created_ms,
            "trace_id": _cut(ctx.trace_id) if ctx is not None else None,
            "span_id": _cut(ctx.span_id) if ctx is not None else None,
            "parent_span_id": _cut(ctx.parent_span_id) if ctx is not None else None,
            "span_name": _cut(ctx.span_name) if ctx is not None else None,
            "traceparent": _cut(ctx.traceparent) if ctx is not None else None,
            "method": record.method[:16],
            "route": record.route[:_SHORT],
            "endpoint": record.endpoint,
            "status": record.status,
            "latency_ms": round(record.latency_ms, 3),
            "ttfb_ms": round(record.ttfb_ms, 3) if record.ttfb_ms is not None else None,
            "stream": record.tap is not None or (call is not None and call.stream),
            "provider": _cut(provider),
            "provider_slug": _cut(slug),
            "model": _cut(model),
            "model_answered": _cut(derived.model),
            "custom_host": self._redact.url(_host(record)),
            "attempt_count": len(attempts),
            "retries": sum(a.retry > 0 for a in attempts),
            "target_path": _cut(outcome.target_path) if outcome is not None else None,
            "cache_status": record.cache_status,
            "workspace_id": ctx.workspace_id if ctx is not None else None,
            "api_key_id": ctx.api_key_id if ctx is not None else None,
            "user": _cut(metadata.get("_user")),
            "metadata": {k: scrub(v, secrets) for k, v in metadata.items()} if secrets else dict(metadata),
            "error_type": _cut(record.error_type or derived.error_type),
            "error_message": scrub((record.error_message or derived.error_message or "")[:_ERROR_LIMIT], secrets)
            or None,
        }
        self._add_usage(row, derived.usage, provider, model, derived.model, public=_is_public(record))
        self._add_bodies(row, record, secrets, answer_type)
        attempt_rows = self._attempt_rows(record, row["id"], created_ms, secrets)
        return storable_entry(row, attempt_rows)

    def _provider_and_secrets(self, record: RequestRecord) -> tuple[str | None, str | None, tuple[str, ...]]:
        """(provider, catalog slug, every secret of the request): the slug's spec is the provider."""
        provider, slug = _provider(record), None
        extra: list[str] = []
        for attempt in record.attempts or ():
            if attempt.sent is not None:  # whatever the gateway sent: by value, whatever the names
                extra.extend(self._redact.sent(attempt.sent.headers, attempt.sent.url))
        names = {a.provider for a in record.attempts or ()}
        names.add(provider)
        for name in names:
            if not name or name[0] != "@":  # only catalog providers hold credentials of their own
                continue
            spec, credentials = self._lookups.provider(name)
            extra.extend(credentials)
            if name == provider and spec is not None:
                provider, slug = spec, name
        forwarded: tuple[str, ...] = ()
        if record.ctx is not None and record.ctx.config:
            extra.extend(self._lookups.config_secrets(record.ctx.config))
            forwarded = self._lookups.config_forward_names(record.ctx.config)
        return provider, slug, self._redact.secrets(record.ctx, extra, forwarded)

    # -- the answer ------------------------------------------------------------------------------------

    def _derive(self, record: RequestRecord, answer_type: str) -> Derived:
        outcome, tap = record.outcome, record.tap
        if tap is not None:
            return _derive_stream(record)
        if outcome is None or not outcome.body:
            return Derived()
        parsed = _json(outcome.body) if _is_json(answer_type) else None
        if parsed is None:
            return Derived()
        answer_model = parsed.get("model")
        derived = Derived(_measured(outcome.measured) or usage_mod.usage_of(parsed.get("usage")),
                          answer_model if isinstance(answer_model, str) else None)
        if not outcome.ok:
            derived.error_type, derived.error_message = _error_of(parsed)
        return derived

    def _add_usage(self, row: Row, used: usage_mod.Usage | None, provider: str | None, model: str | None,
                   answered: str | None, *, public: bool) -> None:
        if used is None:
            row.update(prompt_tokens=None, completion_tokens=None, total_tokens=None, usage_estimated=False,
                       cost=None)
            return
        price = self._prices.price(provider, model, answered, public)
        row.update(prompt_tokens=used.prompt_tokens, completion_tokens=used.completion_tokens,
                   total_tokens=used.total_tokens, usage_estimated=used.estimated,
                   cost=price.cost(used.prompt_tokens, used.completion_tokens))

    def _attempt_rows(self, record: RequestRecord, request_id: str, created_ms: int,
                      secrets: tuple[str, ...]) -> list[Row]:
        return [
            {
                "request_id": request_id,
                "position": position,
                "created_ms": created_ms,
                "path": _cut(attempt.target_path),
                "provider": _cut(attempt.provider),
                "host": self._redact.url(attempt.host),
                "status": attempt.status,
                "latency_ms": round(attempt.latency_ms, 3),
                "retry": attempt.retry,
                "error": scrub(attempt.error, secrets),
                "routing": attempt.routing,  # target paths and figures only: nothing secret
            }
            for position, attempt in enumerate(record.attempts or ())
        ]

    # -- bodies ----------------------------------------------------------------------------------------

    def _add_bodies(self, row: Row, record: RequestRecord, secrets: tuple[str, ...], answer_type: str) -> None:
        call, outcome, tap = record.call, record.outcome, record.tap
        request = call.body if call is not None else b""
        if tap is not None:
            response_size = len(tap.head) + tap.captured_bytes
        else:
            response_size = len(outcome.body) if outcome is not None and outcome.body else 0
        row.update(request_bytes=len(request), response_bytes=response_size, request_body=None,
                   response_body=None)
        if not record.bodies_wanted():
            return
        if request:
            row["request_body"] = scrub(self._text(request, _request_is_text(record)), secrets)
        if tap is not None:
            streamed = b"".join([tap.head, *tap.captured])
            row["response_body"] = scrub(self._text(streamed, True), secrets)
        elif outcome is not None and outcome.body:
            row["response_body"] = scrub(self._text(outcome.body, _is_text(answer_type)), secrets)

    def _text(self, raw: bytes, is_text: bool) -> str:
        if not is_text:
            return f"<{len(raw)} bytes, not text>"
        # Cut bytes, then decode: a character split by the cut becomes U+FFFD. PostgreSQL text cannot hold NUL.
        return raw[: self._cap].decode("utf-8", "replace").replace("\x00", "\ufffd")


def _derive_stream(record: RequestRecord) -> Derived:
    tap = record.tap
    assert tap is not None
    view = usage_mod.StreamView(tap.head, b"".join(tap.tail), whole=tap.chunks <= TAIL_CHUNKS)
    answer = view.answer()
    stream = record.outcome.stream if record.outcome is not None else None
    used = _measured(stream.decoder.measured_usage()) if stream is not None else None
    used = used or answer.usage
    if used is None and record.status < 400:
        completion = view.completion_estimate(tap.events)  # the same events, not parsed again
        prompt = usage_mod.estimate_prompt(record.call.json if record.call is not None else None)
        used = usage_mod.Usage(prompt, completion, prompt + completion, estimated=True)
    return Derived(used, answer.model)


def _measured(measured: Any) -> usage_mod.Usage | None:
    """Counts a translation measured (contract.MeasuredUsage) as the log's Usage."""
    if measured is None:
        return None
    prompt, completion = measured.prompt_tokens, measured.completion_tokens
    return usage_mod.Usage(prompt, completion, prompt + completion, estimated=measured.estimated)


def _error_of(parsed: dict) -> tuple[str | None, str | None]:
    error = parsed.get("error")
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return (str(kind) if kind else "upstream_error"), (str(message) if message else None)
    if isinstance(error, str):
        return "upstream_error", error
    message = parsed.get("message")
    return "upstream_error", message if isinstance(message, str) else None


def _provider(record: RequestRecord) -> str | None:
    if record.outcome is not None and record.outcome.provider:
        return record.outcome.provider
    if record.attempts:
        return record.attempts[-1].provider
    return record.ctx.provider if record.ctx is not None else None


def _model(call: Any) -> str | None:
    if call is None:
        return None
    if call.model:
        return call.model
    model = call.json.get("model") if call.json else None
    return model if isinstance(model, str) else None


def _host(record: RequestRecord) -> str | None:
    if record.attempts:
        return record.attempts[-1].host
    return record.ctx.custom_host if record.ctx is not None else None


def _is_public(record: RequestRecord) -> bool:
    """A request that named no custom host went to a provider's public URL (priced by the built-in table)."""
    return record.ctx is not None and not record.ctx.custom_host


def _cut(value: str | None) -> str | None:
    return value[:_SHORT] if value else value


def _json(body: bytes) -> dict | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _content_type(headers: Any) -> str:
    """The answer's content type, lowercased ("" when it has none): read once per record."""
    for name, value in headers or ():
        if name.lower() == "content-type":
            return value.lower()
    return ""


def _is_json(kind: str) -> bool:
    return not kind or "json" in kind


def _is_text(kind: str) -> bool:
    return not kind or kind.startswith(_TEXT_TYPES) or "json" in kind


def _request_is_text(record: RequestRecord) -> bool:
    if record.call is not None and record.call.json is not None:
        return True
    kind = (record.ctx.headers.get("content-type", "") if record.ctx is not None else "").lower()
    return not kind or kind.startswith(_TEXT_TYPES) or "json" in kind
