"""RequestRecord → database rows: one for the request, one per upstream attempt, in two steps.

``draft`` runs on the request path, before the answer's last bytes (Sink.seal, with the write-ahead journal,
the default): it does what needs the request's secrets or its live objects. Every stored text is scrubbed
of the request's secrets there (bodies, error messages, metadata), custom hosts lose their credentials, and
the attempts' rows are made. The draft is plain JSON (journal.py writes it as one line), scrubbed and
storable (storable.py: no NUL, no lone surrogates): safe to write to a local file.

``finish`` turns a draft into the rows, off the request path (in the sink's drain task, or when a journal
left by a dead process is replayed): it parses the answer for usage and model, estimates a stream's usage
when it has none, and prices it. The answer is read from the draft's own texts when they are exactly what
the upstream sent (bytes decoded, nothing scrubbed); otherwise it is parsed in ``draft`` and the draft
carries the result. A draft finished live and the same draft read back from the journal give the same rows.
bench/rows_cost.py measures both steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..ids import time_sorted_id
from . import usage as usage_mod
from .pricing import PriceTable
from .record import CLIENT_CLOSED, TAIL_CHUNKS, RequestRecord
from .redact import REDACTED, Redactor, scrub
from .storable import storable_draft, storable_text

Row = dict[str, Any]
Draft = dict[str, Any]  # RowBuilder.draft: JSON values only
MetadataOf = Callable[[Any, Any], Mapping[str, str]]  # (ctx, parsed body) → metadata incl. "_user"

_TEXT_TYPES = ("application/json", "text/", "application/x-ndjson", "application/problem+json")
_SHORT = 256  # column width of names (model, provider, span name …)
_SHORT_COLUMNS = ("trace_id", "span_id", "parent_span_id", "span_name", "traceparent", "route", "provider_slug",
                  "target_path", "user", "error_type")  # drafted whole, cut by finish
_CTX_COLUMNS = ("trace_id", "span_id", "parent_span_id", "span_name", "traceparent", "workspace_id", "api_key_id")
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


# Its own __init__: a dataclass's generated one stays interpreted when compiled (types.py, RequestContext).
@dataclass(slots=True, init=False)
class Derived:
    """What the answer says, parsed once."""

    usage: usage_mod.Usage | None = None
    model: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    def __init__(self, usage: usage_mod.Usage | None = None, model: str | None = None, error_type: str | None = None,
                 error_message: str | None = None) -> None:
        self.usage = usage
        self.model = model
        self.error_type = error_type
        self.error_message = error_message


class RowBuilder:
    def __init__(self, prices: PriceTable, body_cap: int, metadata_of: MetadataOf,
                 lookups: Lookups | None = None) -> None:
        self._prices = prices
        self._cap = body_cap
        self._metadata_of = metadata_of
        self._lookups = lookups or NoLookups()
        self._redact = Redactor()

    def build(self, record: RequestRecord) -> tuple[Row, list[Row]]:
        """The request's row and its attempts' rows, storable (``draft_line`` then ``finish``)."""
        return self.finish(self.draft_line(record)[0])

    def draft_line(self, record: RequestRecord) -> tuple[Draft, bytes | None]:
        """``draft``, made storable, and its JSON line (None when it cannot be JSON): what the journal writes."""
        return storable_draft(self.draft(record))

    def draft(self, record: RequestRecord) -> Draft:
        """What needs the record's live objects and its secrets: every column but those read from the answer
        (usage, cost, the answering model), and what ``finish`` reads them from."""
        ctx, call, outcome = record.ctx, record.call, record.outcome
        created_ms = int(record.started_at * 1000)
        provider, slug, secrets = self._provider_and_secrets(record)
        answer_type = _content_type(outcome.headers) if outcome is not None else ""
        model = _model(call)
        # Values are drafted as they are: cut to their columns and rounded by ``finish``.
        if ctx is not None:
            metadata = self._metadata_of(ctx, call.json if call is not None else None)
            # The tracing headers are the client's text, as scrubbed as its user and model are: a client that
            # sent a key as its trace id had it stored and exported in clear. (Most requests send no span.)
            row: Row = {"trace_id": scrub(ctx.trace_id, secrets), "span_id": ctx.span_id,
                        "parent_span_id": ctx.parent_span_id, "span_name": ctx.span_name,
                        "traceparent": ctx.traceparent, "workspace_id": ctx.workspace_id, "api_key_id": ctx.api_key_id}
            if secrets and (ctx.span_id or ctx.parent_span_id or ctx.span_name or ctx.traceparent):
                for name in _SPAN_COLUMNS:
                    row[name] = scrub(row[name], secrets)
        else:
            metadata = {}
            row = dict.fromkeys(_CTX_COLUMNS)
        row.update({
            "id": time_sorted_id(created_ms),
            "created_ms": created_ms,
            "method": record.method,
            "route": _route(record, secrets),
            "endpoint": record.endpoint,
            "status": record.status,
            "latency_ms": record.latency_ms,
            "ttfb_ms": record.ttfb_ms,
            "stream": record.tap is not None or (call is not None and call.stream),
            "provider_slug": slug,
            "custom_host": self._redact.url(_host(record)),
            "target_path": outcome.target_path if outcome is not None else None,
            "cache_status": record.cache_status,
            "metadata": {k: scrub(v, secrets) for k, v in metadata.items()} if secrets else dict(metadata),
        })
        row["user"] = row["metadata"].get("_user")  # scrubbed as metadata is: a client may send a key as its user
        self._add_bodies(row, record, secrets, answer_type)
        answer = self._answer(record, row, secrets, answer_type)
        if answer[0] == _PARSED:  # parsed here: it may name an error
            error_type, error_message = answer[3], answer[4]
        else:  # read later from an answer that succeeded (or a stream): no error in it
            error_type = error_message = None
        row["error_type"] = record.error_type or error_type
        row["error_message"] = scrub((record.error_message or error_message or "")[:_ERROR_LIMIT], secrets) or None
        return {"row": row, "attempts": self._attempt_rows(record, row["id"], created_ms, secrets),
                # The model as asked, scrubbed as every text the client wrote: a key sent as the model was stored,
                # and published as a /metrics label, in clear.
                "answer": answer[:3], "price": [provider, scrub(model, secrets), _is_public(record)]}

    def finish(self, draft: Draft) -> tuple[Row, list[Row]]:
        """The rows of a draft (live, or read back from a journal): the columns read from the answer."""
        row, attempts = draft["row"], draft["attempts"]
        for name in _SHORT_COLUMNS:
            value = row[name]
            if value and len(value) > _SHORT:
                row[name] = value[:_SHORT]
        row["method"] = row["method"][:16]
        row["latency_ms"] = round(row["latency_ms"], 3)
        if row["ttfb_ms"] is not None:
            row["ttfb_ms"] = round(row["ttfb_ms"], 3)
        row["attempt_count"] = len(attempts)
        row["retries"] = sum(attempt["retry"] > 0 for attempt in attempts)
        provider, model, public = draft["price"]
        row["provider"], row["model"] = _cut(provider), _cut(model)
        used, answered = _answered(draft["answer"], row)
        row["model_answered"] = storable_text(answered[:_SHORT]) if answered else answered
        self._add_usage(row, used, provider, model, answered, public=public)
        return row, attempts

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

    def _answer(self, record: RequestRecord, row: Row, secrets: tuple[str, ...], answer_type: str) -> list:
        """Where ``finish`` reads the answer: the response body stored in ``row`` (_BODY), the stream's head
        and tail (_STREAM), or what it said, parsed now (_PARSED) when those texts are not the very bytes the
        upstream sent, or are not to be stored (bodies not logged), or when the answer is an error (whose
        message must be scrubbed with the request's secrets)."""
        outcome, tap = record.outcome, record.tap
        if tap is not None:
            stream = outcome.stream if outcome is not None else None
            used = _measured(stream.decoder.measured_usage()) if stream is not None else None
            if record.bodies_wanted():
                head, tail = _verbatim(tap.head, secrets), _verbatim(b"".join(tap.tail), secrets)
                if head is not None and tail is not None:
                    prompt = usage_mod.estimate_prompt(record.call.json if record.call is not None else None)
                    return [_STREAM, list(used) if used else None,
                            [head, tail, tap.chunks <= TAIL_CHUNKS, tap.events, prompt, record.status]]
            return _parsed(_derive_stream(record, used), secrets)
        if outcome is None or not outcome.body or not _is_json(answer_type):
            return _parsed(Derived(), secrets)
        measured = _measured(outcome.measured)
        body = row["response_body"]
        # The stored body is the answer's very text when nothing was cut, replaced (bytes that are not UTF-8,
        # NUL) or scrubbed (which leaves its mark).
        if (outcome.ok and body is not None and len(outcome.body) <= self._cap and _REPLACED not in body
                and REDACTED not in body):
            return [_BODY, list(measured) if measured else None, None]
        return _parsed(_derive_json(outcome.body, outcome.ok, measured), secrets)

    def _add_usage(self, row: Row, used: usage_mod.Usage | None, provider: str | None, model: str | None,
                   answered: str | None, *, public: bool) -> None:
        if used is None or not usage_mod.fits(used):
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


def _derive_json(body: bytes | str, ok: bool, measured: usage_mod.Usage | None) -> Derived:
    parsed = _json(body)
    if parsed is None:
        return Derived()
    answer_model = parsed.get("model")
    derived = Derived(measured or usage_mod.usage_of(parsed.get("usage")),
                      answer_model if isinstance(answer_model, str) else None)
    if not ok:
        derived.error_type, derived.error_message = _error_of(parsed)
    return derived


def _derive_stream(record: RequestRecord, measured: usage_mod.Usage | None) -> Derived:
    tap = record.tap
    assert tap is not None
    prompt = usage_mod.estimate_prompt(record.call.json if record.call is not None else None)
    return _stream_answer(tap.head, b"".join(tap.tail), tap.chunks <= TAIL_CHUNKS, tap.events, measured, prompt,
                          record.status)


def _stream_answer(head: bytes, tail: bytes, whole: bool, events: int, measured: usage_mod.Usage | None,
                   prompt: int, status: int) -> Derived:
    view = usage_mod.StreamView(head, tail, whole=whole)
    answer = view.answer()
    used = measured or answer.usage
    # Estimated when it went well, and when the client left a stream it had been reading: the upstream did
    # that work and the client got it (charged nothing, a client that hung up before the usage chunk read
    # past every token budget).
    if used is None and (status < 400 or status == CLIENT_CLOSED):
        completion = view.completion_estimate(events)  # the same events, not parsed again
        used = usage_mod.Usage(prompt, completion, prompt + completion, estimated=True)
    return Derived(used, answer.model)


_SPAN_COLUMNS = ("span_id", "parent_span_id", "span_name", "traceparent")
_PASSTHROUGH = "proxy"  # the endpoint of the passthrough routes, whose paths the client writes

# How a draft says where its answer is (RowBuilder._answer).
_PARSED, _BODY, _STREAM = "parsed", "body", "stream"
_REPLACED = "\ufffd"  # what decoding puts for bytes that are not UTF-8 (and what _text puts for NUL)


def _parsed(derived: Derived, secrets: tuple[str, ...]) -> list:
    """The answer as the draft carries it when it was parsed on the request path (its error too), every
    text the upstream wrote scrubbed: an upstream that echoes its credential may echo it anywhere."""
    used = list(derived.usage) if derived.usage is not None else None
    return [_PARSED, used, scrub(derived.model, secrets), scrub(derived.error_type, secrets),
            derived.error_message]


def _answered(answer: list, row: Row) -> tuple[usage_mod.Usage | None, str | None]:
    """A draft's answer → (usage, answering model)."""
    kind, measured = answer[0], answer[1]
    used = usage_mod.Usage(*measured) if measured is not None else None
    if kind == _PARSED:
        return used, answer[2]
    if kind == _BODY:
        derived = _derive_json(row["response_body"], True, used)
    else:
        head, tail, whole, events, prompt, status = answer[2]
        derived = _stream_answer(head.encode(), tail.encode(), whole, events, used, prompt, status)
    return derived.usage, derived.model


def _verbatim(raw: bytes, secrets: tuple[str, ...]) -> str | None:
    """``raw`` as text when that text is exactly its bytes and holds nothing to scrub (and no NUL, which
    the store cannot hold): then the answer can be read from the text later. Else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or scrub(text, secrets) is not text:
        return None
    return text


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


def _route(record: RequestRecord, secrets: tuple[str, ...]) -> str:
    """The request's path, scrubbed where the client chose it: a passthrough path is the client's text
    (``/v1/files/<id>``), and a client that put a credential there had it stored in clear. The other routes'
    paths are the gateway's own (``/v1/chat/completions``): nothing to scan on every request."""
    if record.endpoint != _PASSTHROUGH:
        return record.route
    return scrub(record.route, secrets) or record.route


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


def _json(body: bytes | str) -> dict | None:
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
