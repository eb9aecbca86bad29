"""How the stream decoders judge an upstream's last bytes, and an upstream event that never ends: the OpenAI
relay's clean end is a last event of ``[DONE]`` (comments after it do not count), the Anthropic relay's a whole
``message_stop``; a translated stream whose event outgrows ``sse.MAX_EVENT_BYTES`` fails (before its start: a
failed attempt; after it: the client's error event, and the upstream is let go)."""

from __future__ import annotations

import orjson

from sluicegate.providers import anthropic, contract, openai
from sluicegate.providers.sse import ends_with_done
from sluicegate.providers.translated_streams import AnthropicRelay, ends_with_message_stop
from tests.fakes.transport import content_chunk, sse_event

LIMIT_MESSAGE = "the upstream sent an event larger than the gateway's limit of 1024 bytes"


OPENAI_AFTER_THE_END = [  # an OpenAI stream's last read: (its end, then what the relay must not pass on)
    (b"data: [DONE]\n\n", b"data: {}\n\n"),
    (b"data:[DONE]\r\n\r\n", b'data: {"choices": [{"index": 0, "delta": {"content": "late"}}]}\r\n\r\n'),
    (b"data: [DONE]\n\n", b'event: error\ndata: {"error": {"message": "late"}}\n\n'),
]
OPENAI_ENDS = [  # (the last bytes relayed, a clean end?)
    (b"data:[DONE]\n\n", True),
    (b"data: [DONE]\n\n: keep-alive\n\n", True),
    (b"data: [DONE]\r\r", True),
    (b"data:[DONE]\r\n\r\n:ping\r\n\r\n: ping\r\n\r\n", True),
    (b"".join(OPENAI_AFTER_THE_END[0]), False),  # not the last event (the relay cuts the stream after it)
    (b": data: [DONE]\n\n", False),
    (b"event: x\ndata:[DONE", False),
]
ANTHROPIC_ENDS = [
    (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', True),
    (b'event: message_stop\rdata: {"type": "message_stop"}\r\r: bye\r\r', True),
    (b'event: message_stop\ndata: {"type":"message_stop"}\n\nevent: ping\ndata: {"type": "ping"}\n\n', True),
    (b'event: message_stop\ndata: {"type": "mess', False),
    (b"event: message_stop\n\n", False),
    (b"event: message_stop\n", False),
    (b'event: message_stop\ndata: {"type":"message_stop"}\n\nevent: x\ndata: {"type":"message_delta"}\n\n', False),
]
AFTER_THE_END = [  # an Anthropic stream's last read: the end, then what the relay must not pass on
    b'event: message_stop\ndata: {"type":"message_stop"}\n\nevent: x\ndata: {"type":"message_delta"}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\ndata: [DONE]\n\n',
]


def test_the_openai_relay_is_clean_when_its_last_event_is_done():
    for tail, clean in OPENAI_ENDS:
        assert ends_with_done(tail) is clean, tail
        if tail == b"".join(OPENAI_AFTER_THE_END[0]):
            continue
        decoder = openai.SPEC.translation("chat").stream_decoder()
        decoder.opening(sse_event(content_chunk("a")))
        decoder.head()
        for byte in range(len(tail)):  # however the bytes come
            decoder.relay(tail[byte:byte + 1])
        assert (decoder.end_failure() is None) is clean, tail


def test_the_openai_relay_passes_nothing_on_after_done():
    """``data: [DONE]`` and more in the same read: the more was relayed after the end, and the stream judged cut
    (or failed, by an error event after it)."""
    start = sse_event(content_chunk("a"))
    for done, after in OPENAI_AFTER_THE_END:
        tail = done + after
        whole = openai.SPEC.translation("chat").stream_decoder()  # the end in the held-back start
        assert whole.opening(start + tail) == contract.START
        assert whole.head() == start + done and whole.relay(b"data: more\n\n") == b""
        assert whole.end_failure() is None, tail
        bytewise = openai.SPEC.translation("chat").stream_decoder()  # however the bytes come
        assert bytewise.opening(start) == contract.START
        bytewise.head()
        relayed = b"".join(bytewise.relay(tail[at:at + 1]) for at in range(len(tail)))
        # A CR alone ends a line: read byte by byte, a CRLF's CR ends the event before its LF comes.
        assert relayed in (done, done.removesuffix(b"\n")) and bytewise.end_failure() is None, tail
        inone = openai.SPEC.translation("chat").stream_decoder()  # in one read after the start
        inone.opening(start)
        inone.head()
        assert inone.relay(tail) == done and inone.end_failure() is None, tail


def test_the_anthropic_relay_is_clean_only_after_a_whole_message_stop():
    start = (b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
             b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n')
    for tail, clean in ANTHROPIC_ENDS:
        assert ends_with_message_stop(start + tail) is clean, tail
        if tail in AFTER_THE_END:
            continue
        relay = AnthropicRelay()
        assert relay.opening(start) == contract.START
        relay.head()
        relay.relay(tail)
        assert (relay.end_failure() is None) is clean, tail


def test_the_anthropic_relay_passes_nothing_on_after_message_stop():
    start = (b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
             b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n')
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    for tail in AFTER_THE_END:
        whole = AnthropicRelay()  # the end in the held-back start
        assert whole.opening(start + tail) == contract.START
        assert whole.head() == start + stop and whole.relay(b"data: more\n\n") == b""
        assert whole.end_failure() is None, tail
        bytewise = AnthropicRelay()  # however the bytes come
        assert bytewise.opening(start) == contract.START
        bytewise.head()
        relayed = b"".join(bytewise.relay(tail[at:at + 1]) for at in range(len(tail)))
        assert relayed == stop and bytewise.end_failure() is None, tail


def _chat_to_messages(limit: int = 1024):
    decoder = openai.SPEC.translation("messages").stream_decoder()
    decoder._sse = type(decoder._sse)(limit)  # a small limit, to see it reached
    return decoder


KEY = b"sk-stored-key-0f3e9a"


def test_the_relays_scrub_only_the_reads_that_hold_an_error_event_and_hold_back_an_unfinished_one():
    """The credential an upstream echoes in an error event after the start is scrubbed (dispatch.py gives the
    scrub); the reads without one are passed on as they are, never handed to it; an error event cut inside
    the key is held back until it is whole, and one still unfinished when the upstream ends is not relayed."""
    anthropic_start = (b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
                       b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n')
    cases = [(openai.PassthroughStream, sse_event(content_chunk("a")), sse_event(content_chunk("b")),
              b'data: {"error": {"message": "bad key ' + KEY + b'"}}\n\n'),
             (AnthropicRelay, anthropic_start, anthropic_start.split(b"\n\n", 1)[1],
              b'event: error\ndata: {"type": "error", "error": {"type": "api_error", "message": "' + KEY + b'"}}\n\n')]
    for make, start, content, error in cases:
        for cut in range(1, len(error)):
            scrubbed: list[bytes] = []
            decoder = make()
            decoder.hide_echoes(lambda data, seen=scrubbed: seen.append(data) or data.replace(KEY, b"[REDACTED]"))
            assert decoder.opening(start) == contract.START
            relayed = decoder.head() + decoder.relay(content) + decoder.relay(error[:cut]) + decoder.relay(error[cut:])
            assert relayed == start + content + error.replace(KEY, b"[REDACTED]"), (make, cut)
            assert decoder.end_failure() == "upstream sent an error event" and decoder.error_event("x", "y") == b""
            assert scrubbed and all(data in error for data in scrubbed), scrubbed  # the error event's reads only
        unfinished = make()
        unfinished.hide_echoes(lambda data: data.replace(KEY, b"[REDACTED]"))
        unfinished.opening(start)
        relayed = unfinished.head() + unfinished.relay(error[:-4])
        assert KEY[:6] not in relayed and unfinished.end_failure() == "upstream closed the stream before it finished"
        assert b"error" in unfinished.error_event("upstream closed the stream before it finished", "x")


def test_an_error_event_whose_mark_comes_after_the_echoed_key_is_still_scrubbed():
    """An error event may name the credential before anything says it is one: its JSON's "error" key after
    the message, its ``event: error`` line after the data, or an Anthropic error's "type" last. However
    the upstream's reads cut it, the key never reaches the client: an unfinished event is relayed only
    once it is whole and judged."""
    anthropic_start = (b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
                       b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n')
    openai_start = sse_event(content_chunk("a"))
    cases = [(openai.PassthroughStream, openai_start, b'data: {"message": "bad key ' + KEY + b'", "error": true}\n\n'),
             (openai.PassthroughStream, openai_start, b'data: {"detail": "bad key ' + KEY + b'"}\nevent: error\n\n'),
             (openai.ProxyStream, openai_start, b'data: {"message": "' + KEY + b'", "error": {"code": 401}}\r\n\r\n'),
             (AnthropicRelay, anthropic_start,
              b'data: {"error": {"message": "' + KEY + b'"}, "type": "error"}\n\n')]
    for make, start, error in cases:
        for first in range(len(error)):  # the key's event cut in two reads and arriving with the start
            for cut in range(first + 1, len(error)):
                decoder = make()
                decoder.hide_echoes(lambda data: data.replace(KEY, b"[REDACTED]"))
                assert decoder.opening(start + error[:first]) == contract.START
                relayed = decoder.head() + decoder.relay(error[first:cut]) + decoder.relay(error[cut:])
                assert relayed == start + error.replace(KEY, b"[REDACTED]"), (make, first, cut)
                assert decoder.end_failure() == "upstream sent an error event"


def test_a_stream_whose_last_event_lacks_its_blank_line_still_ends_cleanly():
    """Holding an unfinished event back until it is whole must not swallow a last event an upstream sends
    without the blank line after it: the end (``[DONE]``, ``message_stop``) is relayed and the end is clean."""
    openai_relay = openai.PassthroughStream()
    assert openai_relay.opening(sse_event(content_chunk("a"))) == contract.START
    openai_relay.head()
    assert openai_relay.relay(b"data: [DONE]") == b"data: [DONE]"
    assert openai_relay.end_failure() is None
    anthropic_relay = AnthropicRelay()
    assert anthropic_relay.opening(b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
                                   b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                                   b'"delta":{"text":"hi"}}\n\n') == contract.START
    anthropic_relay.head()
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n'
    assert anthropic_relay.relay(stop) == stop and anthropic_relay.end_failure() is None


def test_an_event_too_large_before_the_start_is_a_failed_attempt():
    decoder = _chat_to_messages()
    assert decoder.opening(b"data: " + b"z" * 512) == contract.HOLD
    assert decoder.opening(b"z" * 1024) == (contract.FAILED, LIMIT_MESSAGE, None, None)


def test_an_event_too_large_after_the_start_ends_the_clients_stream_and_lets_the_upstream_go():
    decoder = _chat_to_messages()
    closed = []
    decoder.attach(lambda: closed.append(True))
    assert decoder.opening(sse_event(content_chunk("hi"))) == contract.START
    decoder.head()
    assert decoder.relay(b"data: " + b"z" * 512) == b""
    last = decoder.relay(b"z" * 1024)
    assert last.startswith(b"event: error\ndata: ")
    assert orjson.loads(last.split(b"data: ", 1)[1])["error"]["message"] == LIMIT_MESSAGE
    assert closed == [True]
    assert decoder.relay(b"z" * 1024 + b"\n\n" + sse_event(content_chunk("more"))) == b""  # nothing after it
    assert decoder.end_failure() == LIMIT_MESSAGE
    assert decoder.error_event(LIMIT_MESSAGE, "upstream_stream_error") == b""  # already told


def test_an_anthropic_event_too_large_before_the_start_is_a_failed_attempt():
    decoder = anthropic.SPEC.translation("chat").stream_decoder()
    decoder._sse = type(decoder._sse)(1024)
    assert decoder.opening(b"event: message_start\ndata: " + b"z" * 2048)[0] == contract.FAILED


def test_an_anthropic_upstream_s_done_is_no_end_and_a_message_event_before_message_start_fails_it():
    decoder = anthropic.SPEC.translation("chat").stream_decoder()
    assert decoder.opening(b"data: [DONE]\n\n") == contract.HOLD  # not Anthropic's end, nor content
    decoder = anthropic.SPEC.translation("chat").stream_decoder()
    delta = orjson.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}})
    assert decoder.opening(b"event: content_block_delta\ndata: " + delta + b"\n\n") == (
        contract.FAILED, "upstream stream sent content_block_delta before message_start", None, None)
