"""Stream decoders (contract.StreamDecoder) for the streams that cross the two APIs, and Anthropic's relay.

- ``ChatToMessagesDecoder``: an OpenAI-spec upstream's chunks as Anthropic events (a /v1/messages client);
- ``MessagesToChatDecoder``: an Anthropic-spec upstream's events as OpenAI chunks (a /v1/chat/completions
  client);
- ``AnthropicRelay``: an Anthropic stream relayed byte for byte to an Anthropic client.

The first-event rule is the one of the OpenAI relay (``openai.PassthroughStream``): the translated start
is held back until the upstream's first event with content (text, a tool call, a finish, usage; for an
Anthropic upstream a content delta or the message's end) or its clean end, and the state machine has
started (``started``: ``message_start`` or the role chunk is out). Until then an upstream error is a FAILED
start that may be retried or fall back, since the client has seen nothing; after it, any failure ends the
client's stream with the error event of its API, never a clean end. An upstream event left unterminated
beyond ``sse.MAX_EVENT_BYTES`` fails the stream the same way (before the start: a failed attempt; after it:
the error event, and the upstream connection is closed, ``attach``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from ..jsontext import writable_json
from . import sse
from .contract import FAILED, HOLD, START, MeasuredUsage, Opening
from .translate.errors import error_message, stream_error_status
from .translate.frames import DONE, SSEDecoder, anthropic_frame, parse_event
from .translate.stream_chat_to_messages import ChatToMessagesStream
from .translate.stream_messages_to_chat import MessagesToChatStream

_CLOSED_EARLY = "upstream closed the stream before it finished"
# An event's name line, or its JSON type outside any string (a JSON string escapes its quotes and newlines,
# so text that merely mentions "event: error" matches neither). Lines may end in CRLF, LF or CR.
_ERROR_EVENT = sse.Mark(rb'(?:^|[\r\n])event: ?error[\r\n]|"type"\s*:\s*"error"', b"error")
_TAIL = 512  # enough bytes to see the last event (message_stop, with a provider's metrics) of what was relayed


class _Machine(Protocol):
    started: bool
    closed: bool

    def feed(self, chunk: Any) -> list[bytes]: ...
    def finish(self) -> list[bytes]: ...
    def fail(self, message: str, error_type: str = ...) -> list[bytes]: ...


class _Translated:
    """Shared mechanics: SSE in, the state machine's frames out; remembers why it closed on an error."""

    _error_type = "api_error"  # the client API's type for a stream the gateway ends with an error
    _done_ends = True  # does ``data: [DONE]`` end the upstream's stream (OpenAI's end, not Anthropic's)?

    def __init__(self, machine: _Machine) -> None:
        self._machine = machine
        self._sse = SSEDecoder()
        self._held: list[bytes] = []
        self._failure: str | None = None
        self._failure_status: int | None = None  # the status an upstream error event names
        self._failure_answer: bytes | None = None  # that event's data: the upstream's error as JSON
        self._content_seen = False
        self._broken = False  # the upstream's bytes can no longer be read as events (an event too large)
        self._close_upstream: Callable[[], None] | None = None
        self._scrub: Callable[[bytes], bytes] | None = None  # hide_echoes
        self.content_events = 0  # upstream events with generated text (a completion estimate)

    def attach(self, close_upstream: Callable[[], None]) -> None:
        """How to close the upstream's connection (exchange.py): done when the stream fails from its bytes,
        so an upstream that keeps sending is not read on for nothing."""
        self._close_upstream = close_upstream

    def _push(self, chunk: bytes) -> list[bytes]:
        frames: list[bytes] = []
        if self._broken:
            return frames
        try:
            events = self._sse.push(chunk)
        except sse.EventTooLarge as exc:
            self._broken = True
            self._failure = str(exc)
            return frames
        for name, data in events:
            if self._machine.closed:
                break
            if data is DONE:
                if self._done_ends:
                    self._content_seen = True
                    frames += self._machine.finish()
                continue
            if isinstance(data, bytes) and not data.strip() and name != "error":
                continue  # an empty data line carries nothing (the SSE specification dispatches no event)
            if not isinstance(data, dict):  # not JSON (invalid UTF-8 too), or JSON that is not an object
                self._broken, self._failure = True, not_an_object(data)  # dropped, the content would be lost
                return frames
            if (problem := self._out_of_order(data)) is not None:
                self._broken, self._failure = True, problem  # before the start: a failed attempt
                return frames
            if self._is_error(name, data):
                self._failure = error_message(data)
                self._failure_status = stream_error_status(data)
                self._failure_answer = orjson.dumps(data)
                frames += self._hidden(self._machine.feed(data))
                continue
            self._content_seen = self._content_seen or self._starts(data)
            self.content_events += self._generated(data)
            frames += self._machine.feed(data)
        return frames

    def hide_echoes(self, scrub: Callable[[bytes], bytes]) -> None:
        """How to scrub the client's error event, made of an upstream's, of the credentials the gateway sent
        (dispatch.py): an upstream that echoes its request's key in an error handed it to the client."""
        self._scrub = scrub

    def _hidden(self, frames: list[bytes]) -> list[bytes]:
        scrub = self._scrub
        return frames if scrub is None else [scrub(frame) for frame in frames]

    def _is_error(self, name: str | None, data: object) -> bool:
        raise NotImplementedError

    def _out_of_order(self, data: object) -> str | None:
        """Why this upstream event cannot come where it came (None: it can)."""
        return None

    def _starts(self, data: object) -> bool:
        """Does this upstream event end the held-back start (the first-event rule)?"""
        raise NotImplementedError

    def _generated(self, data: object) -> bool:
        raise NotImplementedError

    def opening(self, chunk: bytes) -> Opening:
        self._held += self._push(chunk)
        if self._broken:
            return Opening(FAILED, self._failure)
        if self._failure is not None and not self._content_seen:
            return Opening(FAILED, self._failure, self._failure_status, self._failure_answer)
        if self._content_seen and (self._machine.started or self._machine.closed):
            return START
        return HOLD

    def head(self) -> bytes:
        head, self._held = b"".join(self._held), []
        return head

    def relay(self, chunk: bytes) -> bytes:
        frames = self._push(chunk)
        if self._broken and not self._machine.closed:
            frames += self._machine.fail(self._failure or _CLOSED_EARLY, self._error_type)
            if self._close_upstream is not None:
                self._close_upstream()  # the relay then reads the end at once, and asks end_failure
        return b"".join(frames)

    def end_failure(self) -> str | None:
        """The upstream stopped: a machine still open never saw its clean end ([DONE] / message_stop)."""
        if self._machine.closed:
            return self._failure  # None: a clean end; else the error event already went to the client
        return _CLOSED_EARLY

    def error_event(self, message: str, error_type: str) -> bytes:
        return b"".join(self._machine.fail(message, self._error_type))  # nothing when already closed


class ChatToMessagesDecoder(_Translated):
    """An OpenAI stream to an Anthropic client. EOF without ``data: [DONE]`` is a failure."""

    def __init__(self, machine: ChatToMessagesStream) -> None:
        super().__init__(machine)
        self._stream = machine

    def _is_error(self, name: str | None, data: object) -> bool:
        return isinstance(data, dict) and bool(data.get("error"))

    def _starts(self, data: object) -> bool:
        return sse.has_content(data)

    def _generated(self, data: object) -> bool:
        choices = data.get("choices") if isinstance(data, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
                return True
        return False

    def measured_usage(self) -> MeasuredUsage | None:
        usage = self._stream.usage
        estimated = bool(usage.get("input_tokens_estimated"))
        completion = usage.get("output_tokens") or 0
        if estimated and not completion:
            completion = self.content_events  # about one token per content event
        prompt = usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)
        return MeasuredUsage(prompt, completion, estimated)


class MessagesToChatDecoder(_Translated):
    """An Anthropic stream to an OpenAI client. EOF before ``message_stop`` is a failure."""

    _error_type = "server_error"
    _done_ends = False  # an Anthropic stream ends with message_stop: a [DONE] is no end (nor content)

    def __init__(self, machine: MessagesToChatStream) -> None:
        super().__init__(machine)
        self._stream = machine
        self._begun = False  # message_start seen

    def _out_of_order(self, data: object) -> str | None:
        """A message event before ``message_start`` (as ``AnthropicRelay`` judges it): not a stream the
        translation can follow, so a failed attempt that a fallback may take over."""
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "message_start":
            self._begun = True
        elif kind in _MESSAGE_EVENTS and not self._begun:
            return f"upstream stream sent {str(kind)[:32]} before message_start"
        return None

    def _is_error(self, name: str | None, data: object) -> bool:
        return isinstance(data, dict) and data.get("type") == "error"

    def _starts(self, data: object) -> bool:
        return anthropic_content(data)

    def _generated(self, data: object) -> bool:
        return isinstance(data, dict) and data.get("type") == "content_block_delta"

    def measured_usage(self) -> MeasuredUsage | None:
        usage = self._stream.usage
        return MeasuredUsage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                             estimated=not self._stream.usage_reported)


_MESSAGE_EVENTS = frozenset({"content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                             "message_stop"})


def not_an_object(data: object) -> str:
    """Why an upstream event whose data is not a JSON object fails a translated stream: it cannot be translated,
    and skipping it would lose what it carried (a text delta in invalid UTF-8 vanished, the stream ending
    clean), so it is a malformed answer, as the non-streamed translation's 502 says for the same bytes."""
    if isinstance(data, bytes):
        try:
            writable_json(data)
        except orjson.JSONDecodeError as exc:
            return f"upstream sent an event that is not JSON ({str(exc)[:200]})"
    return f"upstream sent an event that is not a JSON object ({type(data).__name__})"


def anthropic_content(event: object) -> bool:
    """An Anthropic event past the preamble (``message_start``, ``ping``, an empty block's start): a content
    delta, or the message's end."""
    return isinstance(event, dict) and event.get("type") in ("content_block_delta", "message_delta", "message_stop")


def _is_message_stop(event: bytes) -> bool:
    data = parse_event(event)[1]
    return isinstance(data, dict) and data.get("type") == "message_stop"


class AnthropicRelay:
    """An Anthropic stream relayed as is. Its start is held back like the OpenAI relay's, until the first
    content (``anthropic_content``); an ``error`` event before it fails it, and so does a message event before
    ``message_start`` (the anthropic SDKs assert the order, and failed with a bare AssertionError). The end is
    clean when the last event relayed was a whole ``message_stop`` (``ends_with_message_stop``); whatever the
    upstream sends after it (a ``data: [DONE]``, a stray event) is not relayed, even when it came in the same
    read as the ``message_stop``. An upstream error event after the start is relayed scrubbed of the
    credentials the gateway sent (``hide_echoes``), whole: an unfinished event is held back until it is."""

    __slots__ = ("_begun", "_ended", "_error_seen", "_held", "_pending", "_scrub", "_sse", "_tail")

    def __init__(self) -> None:
        self._held = b""
        self._sse = SSEDecoder()
        self._tail = b""
        self._error_seen = False
        self._begun = False  # message_start seen
        self._ended = False  # a whole message_stop has been relayed
        self._pending = b""  # the start of an event, held back until it is whole (it may be an error)
        self._scrub: Callable[[bytes], bytes] | None = None

    def hide_echoes(self, scrub: Callable[[bytes], bytes]) -> None:
        """How to scrub relayed bytes that hold an upstream error event of the credentials the gateway sent
        (dispatch.py): an upstream that echoes its request's key in an error handed it to the client."""
        self._scrub = scrub

    def opening(self, chunk: bytes) -> Opening:
        self._held += chunk
        try:
            events = self._sse.push(chunk)
        except sse.EventTooLarge as exc:
            return Opening(FAILED, str(exc))
        for name, data in events:
            kind = data.get("type") if isinstance(data, dict) else name
            if kind == "error" or name == "error":
                return Opening(FAILED, error_message(data), stream_error_status(data), orjson.dumps(data))
            if kind == "message_start":
                self._begun = True
            elif kind in _MESSAGE_EVENTS and not self._begun:
                return Opening(FAILED, f"upstream stream sent {str(kind)[:32]} before message_start")
            if anthropic_content(data):
                return START
        return HOLD

    def head(self) -> bytes:
        return self._judged(b"", self._held)

    def relay(self, chunk: bytes) -> bytes:
        if self._ended:
            return b""
        if self._pending:
            chunk, self._pending = self._pending + chunk, b""
        return self._judged(self._tail, chunk)  # an event name split across two reads is still seen

    def _judged(self, relayed: bytes, chunk: bytes) -> bytes:
        """``chunk`` (after the ``relayed`` bytes) as the client gets it: cut after the stream's end; its
        unfinished last event held back (``sse.held_back``: an error event goes out whole, though what marks
        it may come after the key it echoes), and, an error seen, scrubbed."""
        window = relayed + chunk
        end = self._end_of_stream(window)
        if end is not None:
            chunk, window = chunk[:max(end - len(relayed), 0)], window[:end]
        if end is None and (keep := sse.held_back(chunk, window, ends_with_message_stop)):
            self._pending, chunk, window = chunk[-keep:], chunk[:-keep], window[:-keep]
        if _ERROR_EVENT.found(window):
            self._error_seen = True
            if self._scrub is not None and chunk:
                chunk = self._scrub(chunk)
        self._tail = window[-_TAIL:]
        return chunk

    def _end_of_stream(self, relayed: bytes) -> int | None:
        """Where ``relayed`` is to be cut: just past its first whole ``message_stop`` event (the stream's
        end: the SDKs took what came after one in the same read for more events, and the relay judged such a
        stream cut), or None to keep it all."""
        end = sse.past_first(relayed, b"message_stop", _is_message_stop)
        self._ended = end is not None
        return end

    def end_failure(self) -> str | None:
        if self._error_seen:
            return "upstream sent an error event"
        return None if ends_with_message_stop(self._tail) else _CLOSED_EARLY

    def error_event(self, message: str, error_type: str) -> bytes:
        if self._error_seen:
            return b""  # the upstream's own error event already told the client
        return anthropic_frame({"type": "error", "error": {"type": "api_error", "message": message}})

    def measured_usage(self) -> MeasuredUsage | None:
        return None


def ends_with_message_stop(tail: bytes) -> bool:
    """Is the last event of an Anthropic stream whose last bytes are ``tail`` a whole ``message_stop``: its
    data the complete JSON of that type (comments, keep-alives and pings after it do not count)? An
    ``event: message_stop`` line without its data, or with its data cut, is no end."""
    if b"message_stop" not in tail:
        return False
    for data in sse.data_backwards(tail):
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        kind = event.get("type") if isinstance(event, dict) else None
        if kind != "ping":
            return kind == "message_stop"
    return False
