"""An Anthropic-spec upstream that reports no usage, behind /v1/chat/completions: the answer, the usage chunk
and the request log carry estimates marked as such, never 0 tokens (a reply a client, a budget or a cost
would take as free)."""

from __future__ import annotations

import orjson

from sluicegate.providers import anthropic
from sluicegate.providers.contract import Origin

REQUEST = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x" * 400}]}


def translation():
    translation = anthropic.SPEC.translation("chat", Origin("r1", 1))
    translation.request_body(REQUEST, orjson.dumps(REQUEST), edited=False)
    return translation


def test_an_answer_without_usage_is_estimated():
    t = translation()
    message = {"id": "m", "type": "message", "role": "assistant", "model": "c", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "y" * 80}]}
    usage = orjson.loads(t.response_body(200, orjson.dumps(message)))["usage"]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] == 20  # 80 characters, 4 a token
    measured = t.measured_usage()
    assert measured is not None and measured.estimated
    assert (measured.prompt_tokens, measured.completion_tokens) == (usage["prompt_tokens"], 20)


def test_an_answer_with_usage_is_read_as_reported():
    t = translation()
    message = {"id": "m", "type": "message", "role": "assistant", "model": "c", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 9, "output_tokens": 4}}
    usage = orjson.loads(t.response_body(200, orjson.dumps(message)))["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (9, 4) and t.measured_usage() is None


def test_a_stream_without_usage_is_estimated():
    decoder = translation().stream_decoder()
    events = [{"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
                                                    "model": "c", "content": []}},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "y" * 40}},
              {"type": "content_block_stop", "index": 0},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
              {"type": "message_stop"}]
    decoder.opening(b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events))
    measured = decoder.measured_usage()
    assert measured is not None and measured.estimated
    assert measured.prompt_tokens > 100 and measured.completion_tokens == 10
