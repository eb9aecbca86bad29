"""The OpenAI spec against the provider contract: identity translation, stream judgement and relay."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.providers import contract, openai, registry
from tests.fakes.transport import content_chunk, sse_event


def test_every_registered_spec_satisfies_the_contract():
    for name, spec in registry.SPECS.items():
        assert spec.name == name
        assert isinstance(spec.endpoint_path("chat"), str)
        translation = spec.translation("chat")
        decoder = translation.stream_decoder()
        assert {"opening", "head", "relay", "end_failure", "error_event"} <= set(dir(decoder))
    assert registry.SPEC_NAMES == tuple(registry.SPECS)
    assert {info.spec.name for info in registry.PROVIDERS.values()} <= set(registry.SPEC_NAMES)


def test_the_body_is_forwarded_untouched_unless_edited():
    translation = openai.SPEC.translation("chat")
    raw = b'{"model": "m",  "top_k": 3}'
    assert translation.request_body({"model": "m", "top_k": 3}, raw, edited=False) is raw
    assert translation.request_body({"model": "x", "top_k": 3}, raw, edited=True) == b'{"model":"x","top_k":3}'
    assert translation.request_body(None, b"form-data", edited=False) == b"form-data"
    assert translation.response_body(200, b'{"any": "thing"}') == b'{"any": "thing"}'


def test_the_decoder_judges_the_start_across_chunk_boundaries():
    decoder = openai.SPEC.translation("chat").stream_decoder()
    event = sse_event(content_chunk("hi"))
    assert decoder.opening(b": ping\n\n" + event[:10]) == contract.HOLD
    assert decoder.opening(event[10:]) == contract.START
    assert decoder.head() == b": ping\n\n" + event


def test_an_error_event_fails_the_start_with_the_upstream_message():
    decoder = openai.SPEC.translation("chat").stream_decoder()
    data = orjson.dumps({"error": {"message": "boom"}})
    verdict = decoder.opening(b"event: error\ndata: " + data + b"\n\n")
    assert verdict == (contract.FAILED, "boom", None, data)


@pytest.mark.parametrize(("tail", "clean"), [
    (b"data: [DONE]\n\n", True),
    (b"data: [DONE]", True),  # cut after the mark, before its blank line: the stream had ended
    (b'\n\ndata: [DONE]\r\n\r\n', True),
    (b'data: {"choices":[{"delta":{"content":"say data: [DONE]', False),  # the text, cut mid-chunk
    (b'data: {"choices":[{"delta":{"content":"data: [DONE]"}}]}\n\n', False),
    (b"data: [DONE] and more\n\n", False),
    (b"", False),
])
def test_a_clean_end_is_the_done_event_on_its_own_line(tail: bytes, clean: bool):
    decoder = openai.SPEC.translation("chat").stream_decoder()
    decoder.opening(sse_event(content_chunk("a")))
    decoder.head()
    decoder.relay(tail)
    assert (decoder.end_failure() is None) is clean


def test_the_relay_passes_chunks_and_knows_a_clean_end_from_a_cut_one():
    decoder = openai.SPEC.translation("chat").stream_decoder()
    decoder.opening(sse_event(content_chunk("a")))
    decoder.head()
    assert decoder.relay(b"data: [DO") == b""  # an unfinished event waits until it is whole
    assert decoder.end_failure() == "upstream closed the stream before it finished"
    assert decoder.relay(b"NE]\n\n") == b"data: [DONE]\n\n"
    assert decoder.end_failure() is None
    event = decoder.error_event("gone", "upstream_stream_error")
    # Named "error": the portkey-ai Node SDK raises only on an event of that name.
    assert event.startswith(b"event: error\ndata: ")
    assert orjson.loads(event[len(b"event: error\ndata: "):]) == {
        "error": {"message": "gone", "type": "upstream_stream_error", "param": None, "code": None}}
