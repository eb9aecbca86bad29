"""sse.split_events: the fast split (no ``\\r`` in the buffer) cuts exactly where the general rule does."""

from __future__ import annotations

import random
import re

import pytest

from sluicegate.providers.sse import split_events

_EVENT_END = re.compile(rb"\r?\n\r?\n")


def by_the_rule(buffer: bytes) -> tuple[list[bytes], bytes]:
    events, start = [], 0
    for match in _EVENT_END.finditer(buffer):
        events.append(buffer[start:match.start()])
        start = match.end()
    return events, buffer[start:]


@pytest.mark.parametrize("buffer", [b"", b"data: a", b"data: a\n\n", b"data: a\n\ndata: b\n", b"\n\n\n\n\n",
                                    b"data: a\n\n\ndata: b\n\n", b"data: a\r\n\r\ndata: b\n\n", b"a\r\n\nb\n\r\nc"])
def test_known_buffers(buffer):
    assert split_events(buffer) == by_the_rule(buffer)


def test_random_buffers():
    rng = random.Random(14)
    for _ in range(3000):
        buffer = bytes(rng.choice(b"ab:\n\n\r ") for _ in range(rng.randrange(0, 40)))
        assert split_events(buffer) == by_the_rule(buffer), buffer
