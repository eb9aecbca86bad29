"""RequestRecord: what the hot path knows about one request, gathered by reference and handed to the sink.

Building a record must cost next to nothing, so the handler only stores references to objects it already
holds (the RequestContext, the Call with its parsed body, the Outcome and its attempt list) plus a few clock
readings. Everything derived from them (usage, cost, redaction, truncation, the database row) is computed
once, by rows.py: just before the answer's last bytes when the write-ahead journal is on (Sink.seal), else
by the sink's drain task after the response has gone.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    INTERNAL_MESSAGE,
    SEND_STALLED,
    SHUTDOWN_CUT,
    GatewayError,
    InternalError,
    ShuttingDown,
    cut_by_shutdown,
    stalled_send,
)
from ..providers import sse
from ..types import CACHE_DISABLED, AttemptRecord, Call, Outcome, RequestContext

CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before the response was complete
# The last event of an Anthropic stream, by its JSON type (quotes inside a JSON string are escaped, so a
# text that mentions message_stop does not match).
_MESSAGE_STOP = re.compile(rb'"type"\s*:\s*"message_stop"\s*}\s*$')
TAIL_CHUNKS = 4  # the usage chunk and [DONE] arrive at the very end of a stream, within the last few reads


def ends_stream(chunk: bytes) -> bool:
    """Does ``chunk`` end with a stream's last event (``data: [DONE]``, or Anthropic's ``message_stop``)?"""
    last = chunk[-64:]
    return sse.ends_with_done(last) or _MESSAGE_STOP.search(last) is not None


# Its own __init__: a dataclass's generated one stays interpreted when compiled (types.py, RequestContext).
@dataclass(slots=True, init=False)
class StreamTap:
    """Watches the chunks a stream relay already holds, without parsing them.

    Per chunk it only counts ``data:`` lines (one C-level scan) and keeps a reference to the latest
    chunks: the usage chunk, if the upstream sends one, is among them. Content events are counted so that
    a stream without usage still gets an (estimated) completion token count.
    """

    head: bytes  # the held-back start of the stream, relayed first (it holds the first content event)
    capture_limit: int  # bytes of the stream kept for the log; 0 when bodies are not logged
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_CHUNKS))
    chunks: int = 0
    events: int = 0  # "data:" lines in the chunks after the head
    captured: list = field(default_factory=list)
    captured_bytes: int = 0
    first_content_at: float | None = None  # perf_counter when the first content was relayed
    failure: str | None = None  # why the stream ended badly after it started, if it did

    def __init__(self, head: bytes, capture_limit: int, tail: deque | None = None, chunks: int = 0, events: int = 0,
                 captured: list | None = None, captured_bytes: int = 0, first_content_at: float | None = None,
                 failure: str | None = None) -> None:
        self.head = head
        self.capture_limit = capture_limit
        self.tail = deque(maxlen=TAIL_CHUNKS) if tail is None else tail
        self.chunks = chunks
        self.events = events
        self.captured = [] if captured is None else captured
        self.captured_bytes = captured_bytes
        self.first_content_at = first_content_at
        self.failure = failure

    def relayed_done(self) -> bool:
        """Was the stream's end (``data: [DONE]``, or Anthropic's ``message_stop``) among the last bytes
        relayed?"""
        last = b"".join(list(self.tail)[-2:]) if self.tail else self.head
        return ends_stream(last)

    def feed(self, chunk: bytes) -> None:
        self.chunks += 1
        self.events += chunk.count(b"data:")
        self.tail.append(chunk)
        if self.captured_bytes < self.capture_limit:
            self.captured.append(chunk)
            self.captured_bytes += len(chunk)


@dataclass(slots=True, init=False)
class RequestRecord:
    """One request as logged. Filled in by the route handler as the request progresses."""

    started_at: float  # wall clock (epoch seconds) at the start: the record's time
    t0: float  # perf_counter at the start: latencies are differences of perf_counter readings
    method: str
    route: str  # the request path, without its query string (which may carry credentials)
    endpoint: str  # "chat" | "completions" | "embeddings" | "messages" | "count_tokens" | "proxy"
    log_bodies: bool  # the process setting; x-portkey-debug: false switches it off per request
    ctx: RequestContext | None = None
    call: Call | None = None
    outcome: Outcome | None = None
    attempts: list[AttemptRecord] | None = None
    cache_status: str = CACHE_DISABLED
    status: int = 0
    latency_ms: float = 0.0
    ttfb_ms: float | None = None  # first byte of the answer (for streams: the first content relayed)
    tap: StreamTap | None = None
    error_type: str | None = None
    error_message: str | None = None
    # With the write-ahead journal (journal.py): the rows' draft, made once before the last bytes of the
    # answer (None if it could not be), and the journal segment that holds it until the rows are committed.
    # The rows themselves (entry) are finished from the draft by the sink's drain task.
    sealed: bool = False
    draft: dict | None = None
    entry: tuple | None = None
    journaled: Any = None
    on_usage: Any = None  # the limits' usage callback, kept by ``release`` when the call goes

    def __init__(self, started_at: float, t0: float, method: str, route: str, endpoint: str, log_bodies: bool,
                 ctx: RequestContext | None = None, call: Call | None = None, outcome: Outcome | None = None,
                 attempts: list[AttemptRecord] | None = None, cache_status: str = CACHE_DISABLED, status: int = 0,
                 latency_ms: float = 0.0, ttfb_ms: float | None = None, tap: StreamTap | None = None,
                 error_type: str | None = None, error_message: str | None = None, sealed: bool = False,
                 draft: dict | None = None, entry: tuple | None = None, journaled: Any = None,
                 on_usage: Any = None) -> None:
        self.started_at = started_at
        self.t0 = t0
        self.method = method
        self.route = route
        self.endpoint = endpoint
        self.log_bodies = log_bodies
        self.ctx = ctx
        self.call = call
        self.outcome = outcome
        self.attempts = attempts
        self.cache_status = cache_status
        self.status = status
        self.latency_ms = latency_ms
        self.ttfb_ms = ttfb_ms
        self.tap = tap
        self.error_type = error_type
        self.error_message = error_message
        self.sealed = sealed
        self.draft = draft
        self.entry = entry
        self.journaled = journaled
        self.on_usage = on_usage

    @classmethod
    def begin(cls, method: str, route: str, endpoint: str, log_bodies: bool) -> RequestRecord:
        return cls(time.time(), time.perf_counter(), method, route, endpoint, log_bodies)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0

    def answered(self, outcome: Outcome, attempts: list[AttemptRecord],
                 cache_status: str = CACHE_DISABLED) -> None:
        """The pipeline produced what the client gets (a body, or a stream about to be relayed)."""
        self.outcome = outcome
        self.attempts = attempts
        self.cache_status = cache_status
        self.status = outcome.status
        self.ttfb_ms = self.elapsed_ms()

    def tap_stream(self, head: bytes, capture_limit: int) -> StreamTap:
        self.tap = StreamTap(head, capture_limit if self.bodies_wanted() else 0)
        return self.tap

    def bodies_wanted(self) -> bool:
        return self.log_bodies and (self.ctx is None or self.ctx.log_bodies)

    def failed(self, exc: BaseException, answer: GatewayError | None = None) -> None:
        """The handler raised: record what the client was (or would have been) told. ``answer``: what the
        middleware answers for ``exc`` (server/middleware.answer_for); by default the error itself, or a 500."""
        if isinstance(exc, asyncio.CancelledError) and cut_by_shutdown(exc):
            if self.tap is not None and self.tap.relayed_done():
                return
            if self.tap is None:  # unanswered: the edge answers 503 (a stream keeps the status it began with)
                self.status = ShuttingDown.status
            self.error_type = "gateway_shutdown"
            self.error_message = SHUTDOWN_CUT
            return
        if isinstance(exc, (asyncio.CancelledError, ConnectionResetError)):
            # The client went away (aiohttp cancels the handler, or the write fails). SDKs hang up as soon as
            # they read [DONE]: a stream relayed in full was answered, whatever happens to the final bytes.
            if self.tap is not None and self.tap.relayed_done():
                return
            self.status = CLIENT_CLOSED
            self.error_type = "client_closed_request"
            self.error_message = (SEND_STALLED if stalled_send(exc)  # it stopped reading: the gateway hung up
                                  else "the client closed the connection before the response was complete")
            return
        if answer is None:
            answer = exc if isinstance(exc, GatewayError) else InternalError()
        self.status = answer.status
        if isinstance(answer, InternalError):  # the traceback (never stored: it may hold values) goes to stderr
            self.error_type = "internal_error"
            self.error_message = f"{INTERNAL_MESSAGE} ({type(exc).__name__})"
        else:
            self.error_type = _snake(type(answer).__name__)
            self.error_message = answer.message

    def release(self) -> None:
        """Sealed: the draft holds everything the log still needs. Let go of the request's own objects (its
        context, the parsed body, the answer, the attempts, the stream's chunks) now, so that they are freed
        when the handler ends, still in the CPU's caches, and not with the batch written tens of ms later:
        freeing a batch's records there, cold, was ~4 % of the event loop under load. Only the limits' usage
        callback stays."""
        self.on_usage = getattr(self.call, "on_usage", None)
        self.ctx = self.call = self.outcome = self.attempts = self.tap = None

    def usage_callback(self) -> Any:
        """What the request's limits settle its usage with (None: no limits, or it failed before they applied)."""
        return self.on_usage if self.call is None else getattr(self.call, "on_usage", None)

    def finish(self) -> None:
        self.latency_ms = self.elapsed_ms()
        tap = self.tap
        if tap is None:
            return
        if tap.first_content_at is not None:  # for a stream, the first byte that counts is the first token
            self.ttfb_ms = (tap.first_content_at - self.t0) * 1000.0
        if tap.failure and self.error_type is None:
            self.error_type = "upstream_stream_error"
            self.error_message = tap.failure


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)

