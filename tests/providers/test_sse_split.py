"""sse.split_events and sse.EventSplitter cut a stream into events as the SSE specification does (lines end
in CRLF, LF or a lone CR; an empty line ends an event), whether the bytes come whole or in pieces; a pending
event costs its length once, and one beyond the limit fails the stream."""

from __future__ import annotations

import random
import time

import pytest

from sluicegate.providers.sse import MAX_EVENT_BYTES, EventSplitter, EventTooLarge, split_events
from sluicegate.providers.translate.frames import SSEDecoder


def by_the_spec(buffer: bytes) -> tuple[list[list[bytes]], list[bytes]]:
    """The events' lines (events without any line left out) and the lines still pending, read line by line
    as the specification's parser reads them (a lone CR at the very end counts as a line end)."""
    events, lines, start, at = [], [], 0, 0
    while at < len(buffer):
        byte = buffer[at:at + 1]
        if byte not in (b"\r", b"\n"):
            at += 1
            continue
        line = buffer[start:at]
        at += 2 if buffer[at:at + 2] == b"\r\n" else 1
        start = at
        if line:
            lines.append(line)
        elif lines:
            events.append(lines)
            lines = []
    if buffer[start:]:
        lines.append(buffer[start:])
    return events, lines


def lines_of(events: list[bytes], rest: bytes) -> tuple[list[list[bytes]], list[bytes]]:
    """What the gateway's parsers read from split events: each event's non-empty lines."""
    cut = [[line for line in event.splitlines() if line] for event in events]
    return [lines for lines in cut if lines], [line for line in rest.splitlines() if line]


@pytest.mark.parametrize("buffer", [b"", b"data: a", b"data: a\n\n", b"data: a\n\ndata: b\n", b"\n\n\n\n\n",
                                    b"data: a\n\n\ndata: b\n\n", b"data: a\r\n\r\ndata: b\n\n", b"a\r\n\nb\n\r\nc",
                                    b"data: a\r\rdata: b\r\r", b"a\n\rb", b"a\r\r\nb\r\n\r"])
def test_known_buffers(buffer):
    assert lines_of(*split_events(buffer)) == by_the_spec(buffer)


def test_random_buffers():
    rng = random.Random(14)
    for _ in range(3000):
        buffer = bytes(rng.choice(b"ab:\n\n\r ") for _ in range(rng.randrange(0, 40)))
        assert lines_of(*split_events(buffer)) == by_the_spec(buffer), buffer


def test_cr_only_line_ends_end_events():
    assert split_events(b'data: {"a":1}\r\rdata: [DONE]\r\r') == ([b'data: {"a":1}', b"data: [DONE]"], b"")


def test_pieces_are_cut_as_the_spec_cuts_the_whole():
    rng = random.Random(15)
    for _ in range(3000):
        buffer = bytes(rng.choice(b"ab:\n\n\r ") for _ in range(rng.randrange(0, 60)))
        splitter, events = EventSplitter(), []
        at = 0
        while at < len(buffer):
            step = rng.randrange(1, 8)
            events += splitter.push(buffer[at:at + step])
            at += step
        assert lines_of(events, splitter.pending) == by_the_spec(buffer), buffer


def test_a_long_event_is_scanned_once_not_once_a_read():
    """4 MiB of one unterminated event in 1 KiB reads: a rescan of the pending bytes on every read (as the
    decoder did) costs gigabytes of copying and searching; each byte once costs milliseconds."""
    decoder = SSEDecoder()
    piece = b"z" * 1024
    started = time.process_time()
    assert decoder.push(b"data: ") == []
    for _ in range(4096):
        decoder.push(piece)
    assert decoder.push(b"\n\n") == [(None, b"z" * (4096 * 1024))]
    assert time.process_time() - started < 0.5


def test_an_event_pending_beyond_the_limit_fails_the_stream():
    decoder = SSEDecoder()
    piece = b"z" * 65536
    decoder.push(b"data: ")
    with pytest.raises(EventTooLarge, match=f"limit of {MAX_EVENT_BYTES} bytes"):
        for _ in range(MAX_EVENT_BYTES // len(piece) + 1):
            decoder.push(piece)
    assert len(decoder.pending) <= MAX_EVENT_BYTES + len(piece)
