"""sse.Mark: a pattern searched only where its literal occurs finds exactly what the pattern alone finds.

The decoders ask it of every relayed chunk, so it skips the regular expression when the literal is absent;
that is only right when every match of the pattern holds the literal, which these tests check for the marks
the decoders use, on the texts that matter (event names, JSON keys, line ends, start offsets)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.providers import openai, sse, translated_streams

MARKS = {"openai": openai._ERROR_MARK, "translated": translated_streams._ERROR_EVENT}

PIECES = [b"event: error\n", b"event:error\r\n", b"event: error\r", b"event: Error\n", b"data: ", b'"error"',
          b'"error" :', b'"error":', b'"type"', b'"type": "error"', b'"type":"error"', b"\n", b"\r\n", b"\r",
          b"{", b"}", b" ", b"err", b"or", b'"', b":", b"event: message\n", b"[DONE]", b"\\\"error\\\":"]


def _pattern(mark: sse.Mark) -> re.Pattern[bytes]:
    return mark._pattern


@pytest.mark.parametrize("name", sorted(MARKS))
@pytest.mark.parametrize("text, start", [
    (b'data: {"error": {"message": "no"}}\n\n', 0),
    (b'event: error\ndata: {"type": "error"}\n\n', 0),
    (b'data: {"choices": []}\n\nevent: error\n', 5),
    (b'data: {"choices": []}\n\nevent: error\n', 30),
    (b'data: {"content": "an \\"error\\": in text"}\n\n', 0),
    (b'event:error\r\ndata: {}\r\n\r\n', 0),
    (b"", 0),
    (b"data: [DONE]\n\n", 0),
])
def test_mark_agrees_with_its_pattern(name: str, text: bytes, start: int) -> None:
    mark = MARKS[name]
    assert mark.found(text, start) == (_pattern(mark).search(text, start) is not None)


@pytest.mark.parametrize("name", sorted(MARKS))
def test_mark_finds_an_error_event_and_skips_plain_content(name: str) -> None:
    mark = MARKS[name]
    assert mark.found(b"event: error\ndata: {}\n\n")
    assert not mark.found(b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n')
    assert not mark.found(b"event: error\ndata: {}\n\n", 1)  # past the start of its line


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=12), start=st.integers(0, 40),
       name=st.sampled_from(sorted(MARKS)))
def test_mark_agrees_with_its_pattern_on_any_mix(pieces: list[bytes], start: int, name: str) -> None:
    mark, text = MARKS[name], b"".join(pieces)
    assert mark.found(text, start) == (_pattern(mark).search(text, start) is not None)
