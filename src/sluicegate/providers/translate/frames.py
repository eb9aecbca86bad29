"""SSE frames for both APIs: encode one event, decode a byte stream into (event name, parsed data)."""

from __future__ import annotations

from typing import Any

import orjson

from ...jsontext import writable_json
from ..sse import MAX_EVENT_BYTES, EventSplitter

DONE = object()  # the data of ``data: [DONE]``
DONE_FRAME = b"data: [DONE]\n\n"


def anthropic_frame(event: dict[str, Any]) -> bytes:
    """``event: <type>`` plus its JSON data, as the Anthropic API frames every stream event."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def openai_frame(chunk: dict[str, Any]) -> bytes:
    """``data: <json>``, as the OpenAI API frames every stream chunk."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def openai_error_frame(message: str, error_type: str) -> bytes:
    """The event that tells an OpenAI client its stream broke, named ``error``: the openai SDKs raise on an
    ``error`` in any chunk, but the portkey-ai Node SDK only on an event of that name (it handed the unnamed
    one to the client's loop as a chunk without ``choices``)."""
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


def parse_event(event: bytes) -> tuple[str | None, object]:
    """(event name, data): data is the parsed JSON, ``DONE``, the raw bytes when not JSON, or None."""
    name, data = None, []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip())
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    if not data:
        return name, None  # a comment or keep-alive
    payload = b"\n".join(data)
    if payload == b"[DONE]":
        return name, DONE
    try:
        return name, writable_json(payload)  # translated events are written again: no deeper than that
    except orjson.JSONDecodeError:
        return name, payload


_BOM = "\ufeff".encode()


class SSEDecoder:
    """Bytes from the network in, complete events out; keeps the incomplete tail between pushes.

    Each byte is scanned once; an event still unterminated beyond ``limit`` bytes raises
    ``sse.EventTooLarge`` (the stream has failed: it must not grow the gateway's memory without bound)."""

    __slots__ = ("_events", "_first")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._events = EventSplitter(limit)
        self._first: bytes | None = b""  # the stream's first bytes, until it is known whether they begin with a BOM

    def push(self, data: bytes) -> list[tuple[str | None, object]]:
        if self._first is not None:  # the SSE spec strips one leading BOM: its first event was lost
            self._first += data
            if len(self._first) < len(_BOM) and _BOM.startswith(self._first):
                return []
            data, self._first = self._first.removeprefix(_BOM), None
        return [parsed for parsed in map(parse_event, self._events.push(data)) if parsed[1] is not None]

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated (non-empty at EOF means the stream was cut)."""
        return self._events.pending
