"""SSE framing for the translated streams: what the gateway writes and how it reads an upstream."""

from __future__ import annotations

from sluicegate.providers.translate.frames import DONE, SSEDecoder, anthropic_frame, openai_frame


def test_frames_are_written_in_each_api_s_form() -> None:
    assert anthropic_frame({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert openai_frame({"a": 1}) == b'data: {"a":1}\n\n'


def test_decoder_keeps_partial_events_and_skips_comments() -> None:
    decoder = SSEDecoder()
    assert decoder.push(b": keep-alive\n\nevent: message_start\r\ndata: {\"type\":") == []
    assert decoder.pending == b'event: message_start\r\ndata: {"type":'
    assert decoder.push(b' "message_start"}\r\n\r\ndata: [DONE]\n\ndata: not json\n\n') == [
        ("message_start", {"type": "message_start"}), (None, DONE), (None, b"not json")]
    assert decoder.pending == b""


def test_multi_line_data_is_joined() -> None:
    assert SSEDecoder().push(b'data: {"a":\ndata: 1}\n\n') == [(None, {"a": 1})]


def test_one_leading_bom_is_stripped_however_the_bytes_come() -> None:
    # The SSE spec strips one leading U+FEFF: the first event behind it was dropped, and a one-word reply
    # arrived as an empty message.
    stream = "\ufeff".encode() + b'data: {"a": 1}\n\ndata: {"b": 2}\n\n'
    for size in (1, 2, 3, 4, len(stream)):
        decoder = SSEDecoder()
        events = [event for at in range(0, len(stream), size) for event in decoder.push(stream[at:at + size])]
        assert events == [(None, {"a": 1}), (None, {"b": 2})], size
    later = SSEDecoder()
    assert later.push(b'data: {"a": 1}\n\n') == [(None, {"a": 1})]
    assert later.push("\ufeff".encode() + b'data: {"b": 2}\n\n') == []  # only at the stream's start
