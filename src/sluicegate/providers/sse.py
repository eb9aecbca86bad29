"""Server-sent events, just enough to judge the start and the end of an OpenAI-style stream.

Pure functions: the relay decides whether a stream has really started (first event with content),
and whether it ended cleanly (``data: [DONE]``), without parsing every chunk. ``EventSplitter`` (the one
with state) cuts a stream read piece by piece into its events for the decoders that parse every event (the
translated streams): each byte is scanned once, and an event still unterminated beyond ``MAX_EVENT_BYTES``
fails the stream instead of growing without bound.

Lines end as the SSE specification lets them: CRLF, LF or a lone CR; an empty line ends an event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import orjson

from .translate.errors import stream_error_object, stream_error_status

# Two line ends in a row: an event's end. A CR followed by LF is one line end (CRLF), not two.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
EVENT_ENDS = (b"\n\n", b"\r\n\r\n")  # the usual ends of an event, for a quick check of a read's last bytes
_LOOKBACK = 3  # bytes kept to find an event's end begun before a read (at most 2: "\r\n" + "\r\n")
# An event not yet terminated may hold at most this many bytes (the relay's CPU and memory per stream stay
# bounded: an upstream that never ends its event fails the stream at this size). A chat chunk is well under
# a kilobyte; the largest legitimate ones (an image or a long tool call sent whole) stay far below it.
MAX_EVENT_BYTES = 8 * 1024 * 1024
ERROR_EVENT_WAIT = 64 * 1024  # the longest unfinished event a relay holds back until it is whole

CONTENT, EMPTY, ERROR, DONE = "content", "empty", "error", "done"


class EventTooLarge(ValueError):
    """An upstream event that stayed unterminated beyond the limit: the stream cannot be trusted further."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upstream sent an event larger than the gateway's limit of {limit} bytes")
        self.limit = limit


class Mark:
    """A pattern whose every match holds ``literal``, searched only where that literal occurs. Python's regular
    expressions find a pattern that begins with a literal by scanning for it in C, but try one that begins
    with an alternation (the error marks: a line's start or a JSON key) at every byte: ~7 µs for a 200-byte
    chat chunk, where ``in`` takes ~0.3 µs, and a relay asks this of every chunk."""

    __slots__ = ("_literal", "_pattern")

    def __init__(self, pattern: bytes, literal: bytes) -> None:
        self._pattern = re.compile(pattern)
        self._literal = literal

    def found(self, data: bytes, start: int = 0) -> bool:
        """Does ``data`` hold a match at or after ``start``?"""
        return self._literal in data and self._pattern.search(data, start) is not None


def _event_ends(buffer: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of every event end in ``buffer``, in order."""
    if b"\r" not in buffer:  # the usual line ends: found in C, where the regex costs ~10 ns a byte
        find = buffer.find
        at = find(b"\n\n")
        while at >= 0:
            yield at, at + 2
            at = find(b"\n\n", at + 2)
        return
    for match in _EVENT_END.finditer(buffer):
        yield match.span()


def past_first(buffer: bytes, marker: bytes, is_it: Callable[[bytes], bool]) -> int | None:
    """The offset just past the first complete event of ``buffer`` that holds ``marker`` and that ``is_it``
    says is the one (a stream's end: a relay cuts there), or None when none is. Most buffers hold no
    ``marker``: one scan in C."""
    if marker not in buffer:
        return None
    start = 0
    for at, end in _event_ends(buffer):
        event = buffer[start:at]
        if marker in event and is_it(event):
            return end
        start = end
    return None


def held_back(chunk: bytes, window: bytes, ends_stream: Callable[[bytes], bool]) -> int:
    """How many of ``chunk``'s last bytes (``window`` ends with it) a relay holds back for now: those of
    ``window``'s unfinished last event (when it is not longer than ``ERROR_EVENT_WAIT``), so that every event
    goes out whole, once judged: what says an event is an error may come after the credential an upstream
    echoes in it (its JSON's ``"error"`` key after the message, an ``event: error`` line after the data), and
    the error's bytes are scrubbed of it. A client acts on an event only once it is whole, so holding its
    start back delays nothing it can use. An unfinished event that ``ends_stream`` says is the stream's last
    (``data: [DONE]`` with no line end after it) is relayed: some servers close their stream without the
    blank line after it. 0 to relay them all."""
    if chunk.endswith(EVENT_ENDS):  # most reads end an event: one check in C
        return 0
    start = 0
    for _, end in _event_ends(window):
        start = end
    rest = len(window) - start
    if not rest or rest > ERROR_EVENT_WAIT or ends_stream(window[start:]):
        return 0
    return min(rest, len(chunk))


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete events in ``buffer`` and the incomplete remainder."""
    events, start = [], 0
    for at, end in _event_ends(buffer):
        events.append(buffer[start:at])
        start = end
    return events, buffer[start:]


class EventSplitter:
    """Bytes of a stream in, its complete events out, keeping the incomplete one between pushes.

    Each pushed byte is scanned once (with the few before it that may begin an event's end), so a long event
    costs its length, not its length times its reads; one still pending beyond ``limit`` bytes raises
    ``EventTooLarge``."""

    __slots__ = ("_edge", "_limit", "_parts", "_size")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._parts: list[bytes] = []  # the pending event's bytes, as they came
        self._size = 0
        self._edge = b""  # its last bytes, where an event's end may have begun
        self._limit = limit

    def push(self, data: bytes) -> list[bytes]:
        edge = self._edge
        window = edge + data if edge else data
        ends = _event_ends(window)
        first = next(ends, None)
        if first is None:
            if data:
                self._parts.append(data)
                self._size += len(data)
                self._edge = window[-_LOOKBACK:]
                if self._size > self._limit:
                    raise EventTooLarge(self._limit)
            return []
        at, start = first  # ``start``: where the next event starts
        cut = at - len(edge)  # where the first event ends in ``data`` (negative: within the pending bytes)
        pending = b"".join(self._parts)
        events = [pending[:len(pending) + cut] if cut < 0 else pending + data[:cut]]
        for at, end in ends:
            events.append(window[start:at])
            start = end
        rest = window[start:]
        self._parts = [rest] if rest else []
        self._size = len(rest)
        self._edge = rest[-_LOOKBACK:]
        if self._size > self._limit:
            raise EventTooLarge(self._limit)
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated."""
        return b"".join(self._parts)


def data_backwards(tail: bytes) -> Iterator[bytes]:
    """The data of the events in ``tail`` (the last bytes of a stream), last first, skipping events without
    data (comments, keep-alives). The last event counts even without its closing blank line (a stream cut
    right after it had said what it had to); the first may be cut at its start, and then shows no data or
    data that does not parse."""
    events, rest = split_events(tail)
    events.append(rest)
    for event in reversed(events):
        data, _ = _data_of(event)
        if data is not None:
            yield data


def ends_with_done(tail: bytes) -> bool:
    """Is the last event of a stream, whose last bytes are ``tail``, the ``data: [DONE]`` event (with or
    without the space; comments and keep-alives after it do not count)?

    A stream cut inside a chunk whose text mentions ``data: [DONE]`` (quoted inside JSON) is no clean end:
    the mark must be an event's whole data."""
    if b"[DONE]" not in tail:  # most chunks: one scan in C
        return False
    for data in data_backwards(tail):
        return data == b"[DONE]"
    return False


def _data_of(event: bytes) -> tuple[bytes | None, bytes]:
    name, data = b"", []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip())
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return (b"\n".join(data) if data else None), name


def event_data(event: bytes) -> bytes | None:
    """The event's data (its data lines joined), None when it has none (a comment, a keep-alive, a name)."""
    return _data_of(event)[0]


def classify_event(event: bytes) -> tuple[str, str | None, int | None]:
    """(kind, error message, status): does this event carry content, nothing yet, an error (with the HTTP
    status it names, if any), or the end?"""
    data, name = _data_of(event)
    if data is None:  # comment or keep-alive (": ping")
        return EMPTY, None, None
    if data == b"[DONE]":
        return DONE, None, None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return CONTENT, None, None  # not ours to judge; relay it
    if name == b"error" or (isinstance(chunk, dict) and "error" in chunk):
        error = stream_error_object(chunk)
        message = error.get("message") if isinstance(error, dict) else error
        return ERROR, str(message or "upstream stream error"), stream_error_status(chunk)
    return (CONTENT if has_content(chunk) else EMPTY), None, None


def has_content(chunk: object) -> bool:
    """Does this parsed OpenAI chunk carry output (text, a tool call, a finish reason, usage)?"""
    if not isinstance(chunk, dict):
        return True
    choices = chunk.get("choices")
    if not choices:
        return bool(chunk.get("usage"))  # a usage-only chunk is real output too
    if not isinstance(choices, list):
        return True  # not a shape to judge: relayed, as output
    for choice in choices:
        if not isinstance(choice, dict):
            return True
        if choice.get("text") or choice.get("finish_reason"):
            return True
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            if delta:
                return True
            continue
        if any(delta.get(k) for k in ("content", "tool_calls", "function_call", "refusal", "reasoning_content")):
            return True
    return False
