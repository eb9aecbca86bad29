"""A cache entry: what a stored answer holds, its bytes, and the answer it gives back.

An entry holds the response status, the relayable headers of an allow-list (content type only: an
upstream's rate-limit or request-id headers describe another request, a cookie another client) and the
body as the client got it — a stream as its events, ``[DONE]`` included — and the token counts a
translation measured on it, which its bytes may not carry (a stream without a usage chunk, an estimate):
a hit's log record then has the very counts of the answer it replays. Never a request header, never a
credential. Encoded as one JSON line (status, headers, provider, target path, stream flag, usage) then the
body; entries written before the usage was kept decode without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..providers.contract import START, MeasuredUsage, Opening
from ..types import OpenStream, Outcome

KEPT_HEADERS = frozenset({"content-type"})
EVENT_END = b"\n\n"


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    provider: str | None
    target_path: str
    stream: bool
    usage: MeasuredUsage | None = None

    def encode(self) -> bytes:
        usage = self.usage
        counts = [usage.prompt_tokens, usage.completion_tokens, usage.estimated] if usage is not None else None
        meta = [self.status, self.headers, self.provider, self.target_path, self.stream, counts]
        return orjson.dumps(meta) + b"\n" + self.body

    @staticmethod
    def decode(data: bytes) -> Entry:
        meta, _, body = data.partition(b"\n")
        status, headers, provider, target_path, stream, *later = orjson.loads(meta)
        return Entry(status, tuple((k, v) for k, v in headers), body, provider, target_path, stream,
                     _usage(later[0] if later else None))

    def outcome(self) -> Outcome:
        """The stored answer as an Outcome; a stream is replayed through the relay, event by event, its first
        event as the held-back start (where the request log reads the answering model, as for a live one)."""
        headers = list(self.headers)
        if not self.stream:
            return Outcome(self.status, headers, self.body, self.provider, self.target_path, measured=self.usage)
        end = self.body.find(EVENT_END)
        start = len(self.body) if end < 0 else end + len(EVENT_END)
        replay = OpenStream(ReplayBody(self.body, start), PassThroughDecoder(self.usage))
        return Outcome(self.status, headers, self.body[:start], self.provider, self.target_path, stream=replay)


def _usage(counts: object) -> MeasuredUsage | None:
    if (isinstance(counts, list) and len(counts) == 3 and all(type(n) is int and n >= 0 for n in counts[:2])
            and isinstance(counts[2], bool)):
        return MeasuredUsage(counts[0], counts[1], counts[2])
    return None  # none kept (an entry written before), or not counts


def kept_headers(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers an entry keeps, each value as the client got it: bytes of it that were not UTF-8 (read as
    lone surrogates) are left out, as both edges leave them out when they write it, and JSON cannot hold them."""
    return tuple((name, value if value.isascii() else value.encode("utf-8", "ignore").decode())
                 for name, value in headers if name.lower() in KEPT_HEADERS)


class ReplayBody:
    """A stored stream read back one event at a time (an ``UpstreamBody`` for the relay)."""

    def __init__(self, data: bytes, at: int = 0) -> None:
        self._data = data
        self._at = at

    async def read_chunk(self) -> bytes:
        if self._at >= len(self._data):
            return b""
        end = self._data.find(EVENT_END, self._at)
        end = len(self._data) if end < 0 else end + len(EVENT_END)
        chunk, self._at = self._data[self._at:end], end
        return chunk

    def close(self) -> None:
        self._at = len(self._data)


class PassThroughDecoder:
    """The relay's decoder for a replayed stream: the stored events are already what the client gets."""

    def __init__(self, usage: MeasuredUsage | None = None) -> None:
        self._usage = usage

    def opening(self, chunk: bytes) -> Opening:
        return START

    def head(self) -> bytes:
        return b""

    def relay(self, chunk: bytes) -> bytes:
        return chunk

    def end_failure(self) -> str | None:
        return None

    def error_event(self, message: str, error_type: str) -> bytes:
        return b""

    def measured_usage(self) -> MeasuredUsage | None:
        return self._usage  # None: the request log reads the usage from the replayed bytes, as for a relayed stream
