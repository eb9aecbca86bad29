"""Bad input never crashes a translator: a request either translates or is a TranslationError (a 400);
an upstream's odd response or stream chunk is absorbed or refused, never a traceback (a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluicegate.providers.translate import TranslationError
from sluicegate.providers.translate.chat_to_messages import chat_request_to_messages, chat_response_to_message
from sluicegate.providers.translate.estimate import estimate_input_tokens
from sluicegate.providers.translate.messages_to_chat import message_to_chat_response, messages_request_to_chat
from sluicegate.providers.translate.stream_chat_to_messages import ChatToMessagesStream
from sluicegate.providers.translate.stream_messages_to_chat import MessagesToChatStream
from tests.mutations import fields, replaced

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["messages", "role", "content", "type", "text", "system", "tools", "tool_choice", "tool_calls", "function",
        "name", "arguments", "input", "id", "index", "source", "image_url", "url", "tool_use_id", "tool_call_id",
        "stop", "stop_sequences", "max_tokens", "metadata", "user", "choices", "delta", "message", "usage",
        "finish_reason", "stop_reason", "error", "content_block", "partial_json", "parameters", "input_schema"]
VALUES = ["user", "assistant", "system", "tool", "developer", "text", "image", "image_url", "tool_use",
          "tool_result", "function", "auto", "any", "none", "required", "base64", "url", "message_start",
          "content_block_start", "content_block_delta", "message_delta", "message_stop", "error", "text_delta",
          "input_json_delta", "data:image/png;base64,AA", "https://x.test/a.png", "{", "{}"]

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.sampled_from(VALUES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25)
TOP_LEVEL = ["system", "tools", "tool_choice", "stop", "stop_sequences", "max_tokens", "metadata", "user", "choices",
             "usage", "content", "model", "n", "response_format", "parallel_tool_calls", "stream"]
turns = st.dictionaries(st.sampled_from(KEYS), json_like, max_size=4).flatmap(
    lambda turn: st.sampled_from(["user", "assistant", "system", "tool"]).map(lambda role: {"role": role, **turn}))
bodies = st.fixed_dictionaries(
    {"messages": st.lists(turns, max_size=3) | json_like},
    optional=dict.fromkeys(TOP_LEVEL, json_like))


def _translate_or_refuse(translate: Callable[[Any], Any], body: Any) -> None:
    """Translated into what the gateway can send on (JSON orjson writes), or refused."""
    try:
        translated = translate(body)
    except TranslationError:
        return
    orjson.dumps(translated)


@FUZZ
@given(bodies)
def test_requests_translate_or_are_refused(body: dict) -> None:
    _translate_or_refuse(messages_request_to_chat, body)
    _translate_or_refuse(chat_request_to_messages, body)
    if isinstance(body.get("messages"), list):
        assert estimate_input_tokens(body) >= 1


@FUZZ
@given(bodies)
def test_odd_upstream_responses_never_crash(body: dict) -> None:
    _translate_or_refuse(lambda b: chat_response_to_message(b, message_id="m"), body)
    _translate_or_refuse(lambda b: message_to_chat_response(b, completion_id="c", created=1), body)


@FUZZ
@given(st.lists(json_like | bodies, max_size=6))
def test_odd_stream_chunks_never_crash(chunks: list) -> None:
    for stream in (ChatToMessagesStream(message_id="m", estimated_input_tokens=1), MessagesToChatStream(completion_id="c", created=1)):
        for chunk in chunks:
            assert all(isinstance(frame, bytes) for frame in stream.feed(chunk))
        stream.finish()


@FUZZ
@given(st.integers(100, 599), bodies | json_like, st.binary(max_size=20))
def test_odd_error_bodies_never_crash(status: int, body: Any, raw: bytes) -> None:
    from sluicegate.providers.translate.errors import anthropic_error_to_openai, openai_error_to_anthropic
    assert openai_error_to_anthropic(status, body, raw)["error"]["message"]
    assert anthropic_error_to_openai(status, body, raw)["error"]["message"]


# Every leaf of a valid request, replaced by a value of another JSON type: the translators compare fields such as
# a block's "type" against known names, and a list or an object there must be refused (a 400), never a
# TypeError (a 500: an unhashable value looked up in a set or a dict).
MESSAGES_BODY = {
    "model": "m", "max_tokens": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u"},
    "system": [{"type": "text", "text": "be brief"}],
    "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object", "properties": {}}}],
    "tool_choice": {"type": "tool", "name": "get"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "AA"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "ok"},
                                          {"type": "tool_use", "id": "t1", "name": "get", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "42"}]}]},
    ],
}
CHAT_BODY = {
    "model": "m", "max_tokens": 5, "stop": ["END"], "user": "u", "response_format": {"type": "text"},
    "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "get"}},
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
        {"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
}


# Another JSON type for a field: containers (unhashable), null, a number, a string, an integer past 64 bits.
ODD = ([], {}, ["text"], {"type": "text"}, None, 7, "text", 2**64 - 1)


def test_every_field_of_another_json_type_is_translated_or_refused() -> None:
    cases = [(messages_request_to_chat, MESSAGES_BODY), (chat_request_to_messages, CHAT_BODY)]
    for translate, body in cases:
        translate(body)  # the body itself is valid
        for path in fields(body):
            for new in ODD:
                _translate_or_refuse(translate, replaced(body, path, new))


CHAT_RESPONSE = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "tool_calls",
                              "message": {"role": "assistant", "content": "ok", "tool_calls": [
                                  {"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]}}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
MESSAGE_RESPONSE = {"id": "msg", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                    "content": [{"type": "text", "text": "ok"}, {"type": "thinking", "thinking": "t"},
                                {"type": "tool_use", "id": "t1", "name": "get", "input": {"a": 1}}],
                    "usage": {"input_tokens": 3, "output_tokens": 2}}


def test_every_field_of_an_upstream_answer_of_another_json_type_is_absorbed_or_refused() -> None:
    cases = [(lambda b: chat_response_to_message(b, message_id="m"), CHAT_RESPONSE),
             (lambda b: message_to_chat_response(b, completion_id="c", created=1), MESSAGE_RESPONSE)]
    for translate, body in cases:
        translate(body)
        for path in fields(body):
            for new in ODD:
                _translate_or_refuse(translate, replaced(body, path, new))


CHAT_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": None,
                           "delta": {"role": "assistant", "content": "hi", "tool_calls": [
                               {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_every_field_of_a_stream_chunk_of_another_json_type_is_classified() -> None:
    """The first-event rule reads each chunk of an OpenAI stream (content yet, or not): a chunk of an odd
    shape is relayed as content, never a crash (an int for ``choices`` or a list for ``delta`` was a 500)."""
    from sluicegate.providers import sse

    for path in fields(CHAT_CHUNK):
        for new in ODD:
            kind, _, _ = sse.classify_event(b"data: " + orjson.dumps(replaced(CHAT_CHUNK, path, new)) + b"\n\n")
            assert kind in (sse.CONTENT, sse.EMPTY, sse.ERROR)
