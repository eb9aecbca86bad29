"""Recording a stream for the cache while it is relayed: stored only once it ended cleanly.

The recorder wraps the stream's own decoder, so it sees exactly the bytes the client got. The relay asks
``end_failure`` only after the upstream's clean end; a break, an error event or a client that left never
gets there, and an answer without its terminal ``[DONE]`` event is not complete: none of them is stored.
"""

from __future__ import annotations

from collections.abc import Callable

from ..providers.contract import MeasuredUsage, Opening, StreamDecoder
from ..providers.sse import ends_with_done

_TAIL = 256  # the last bytes that hold the stream's last events (its [DONE], and any comment after it)


def complete_stream(data: bytes) -> bool:
    """Did the stream end with its [DONE] event (``data:[DONE]`` too, and comments after it), as the relay
    judges a clean end?"""
    return ends_with_done(data[-_TAIL:])


class RecordingDecoder:
    def __init__(self, inner: StreamDecoder, start: bytes, limit: int,
                 on_complete: Callable[[bytes, MeasuredUsage | None], None]) -> None:
        self._inner = inner
        self._parts: list[bytes] | None = [start]  # None: too large to keep, or handed over already
        self._size = len(start)
        self._limit = limit
        self._on_complete = on_complete

    def opening(self, chunk: bytes) -> Opening:
        return self._inner.opening(chunk)

    def head(self) -> bytes:
        return self._inner.head()

    def relay(self, chunk: bytes) -> bytes:
        out = self._inner.relay(chunk)
        if out and self._parts is not None:
            self._size += len(out)
            if self._size > self._limit:
                self._parts = None
            else:
                self._parts.append(out)
        return out

    def measured_usage(self) -> MeasuredUsage | None:
        return self._inner.measured_usage()

    def end_failure(self) -> str | None:
        failure = self._inner.end_failure()
        parts, self._parts = self._parts, None
        if failure is None and parts is not None:
            data = b"".join(parts)
            if complete_stream(data):
                self._on_complete(data, self._inner.measured_usage())
        return failure

    def error_event(self, message: str, error_type: str) -> bytes:
        return self._inner.error_event(message, error_type)
