"""StreamTap.relayed_done: a client that hangs up once its stream's end was relayed was answered (not 499),
whichever API the stream speaks."""

from __future__ import annotations

import pytest

from sluicegate.telemetry.record import StreamTap

OPENAI_END = b'data: {"choices":[]}\n\ndata: [DONE]\n\n'
ANTHROPIC_END = b'event: message_delta\ndata: {"type":"message_delta"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
RELAYED_END = b'event: message_stop\r\ndata: {"type": "message_stop"}\r\n\r\n'


@pytest.mark.parametrize("end", [OPENAI_END, ANTHROPIC_END, RELAYED_END])
def test_the_end_of_either_api_counts_as_done(end):
    tap = StreamTap(head=b"data: {}\n\n", capture_limit=0)
    tap.feed(b"data: {}\n\n")
    tap.feed(end)
    assert tap.relayed_done()


@pytest.mark.parametrize("last", [
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n',
    b'event: content_block_delta\ndata: {"delta":{"text":"the message_stop event"}}\n\n',
])
def test_a_stream_cut_before_its_end_is_not_done(last):
    tap = StreamTap(head=b"data: {}\n\n", capture_limit=0)
    tap.feed(last)
    assert not tap.relayed_done()
