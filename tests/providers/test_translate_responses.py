"""Golden tables: a Chat Completion as an Anthropic Message and back; error envelopes both ways."""

from __future__ import annotations

import anthropic.types
import openai.types.chat
import pytest

from sluicegate.providers.translate.chat_to_messages import chat_response_to_message
from sluicegate.providers.translate.errors import (
    anthropic_error_to_openai,
    openai_error_to_anthropic,
)
from sluicegate.providers.translate.messages_to_chat import message_to_chat_response
from sluicegate.providers.translate.stream_chat_to_messages import ChatToMessagesStream


def chat(message: dict, finish: str | None, usage: dict | None = None, **choice: object) -> dict:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "smol",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}]}
    if usage is not None:
        body["usage"] = usage
    return body


USAGE = {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
A_USAGE = {"input_tokens": 30, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
CALL_OSLO = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
CALL_ROME = {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}

CHAT_TO_MESSAGE = [
    ("text, natural end", chat({"content": "Hello."}, "stop", USAGE), (),
     [{"type": "text", "text": "Hello."}], "end_turn", None, A_USAGE),
    ("length is max_tokens", chat({"content": "Hel"}, "length", USAGE), (),
     [{"type": "text", "text": "Hel"}], "max_tokens", None, A_USAGE),
    ("a matched stop the client sent is stop_sequence", chat({"content": "a"}, "stop", USAGE, stop_reason="END"),
     ("END",), [{"type": "text", "text": "a"}], "stop_sequence", "END", A_USAGE),
    ("a stop the client did not send is end_turn", chat({"content": "a"}, "stop", USAGE, stop_reason="</s>"),
     ("END",), [{"type": "text", "text": "a"}], "end_turn", None, A_USAGE),
    ("parallel calls: one block each, text first; tool_use even when finish_reason says stop",
     chat({"content": "Checking.", "tool_calls": [CALL_OSLO, CALL_ROME]}, "stop", USAGE), (),
     [{"type": "text", "text": "Checking."},
      {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
      {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}}], "tool_use", None, A_USAGE),
    ("bad JSON arguments kept in _raw, empty ones are {}, a missing id is made up",
     chat({"content": None, "tool_calls": [
         {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1'}},
         {"type": "function", "function": {"name": "g", "arguments": ""}},
         {"id": "d", "type": "function", "function": {"name": "h", "arguments": "[1]"}}]}, "tool_calls", USAGE), (),
     [{"type": "tool_use", "id": "c", "name": "f", "input": {"_raw": '{"a": 1'}},
      {"type": "tool_use", "id": "toolu_msg_1_1", "name": "g", "input": {}},
      {"type": "tool_use", "id": "d", "name": "h", "input": {"_raw": "[1]"}}], "tool_use", None, A_USAGE),
    ("cached prompt tokens are not input tokens", chat({"content": "x"}, "stop", {
        "prompt_tokens": 100, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 60}}), (),
     [{"type": "text", "text": "x"}], "end_turn", None,
     {"input_tokens": 40, "output_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60}),
    ("no usage: the estimates (one character is one token)", chat({"content": "x"}, "stop"), (),
     [{"type": "text", "text": "x"}], "end_turn", None,
     {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}),
    ("no usage: text, tool names and arguments at four characters a token (9 + 2 × 23 = 55 → 14)",
     chat({"content": "Checking.", "tool_calls": [CALL_OSLO, CALL_ROME]}, "tool_calls"), (),
     [{"type": "text", "text": "Checking."},
      {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
      {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}}], "tool_use", None,
     {"input_tokens": 12, "output_tokens": 14, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}),
    ("no usage, no content: no output tokens", chat({"content": ""}, "stop"), (), [], "end_turn", None,
     {"input_tokens": 12, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}),
    ("content filter is a refusal", chat({"content": None, "refusal": "No."}, "content_filter", USAGE), (),
     [{"type": "text", "text": "No."}], "refusal", None, A_USAGE),
]

CAPPED = [  # (characters generated, the client's max_tokens, the estimate)
    (40, None, 10), (40, 16, 10), (80, 16, 16), (81, 16, 16), (3, 16, 1), (0, 16, 0), (80, 0, 20),
]


@pytest.mark.parametrize(("characters", "max_tokens", "expected"), CAPPED)
def test_the_output_estimate_never_passes_max_tokens(characters, max_tokens, expected) -> None:
    message = chat_response_to_message(chat({"content": "x" * characters}, "length"), message_id="m",
                                       estimated_input_tokens=3, max_tokens=max_tokens)
    assert message["usage"]["output_tokens"] == expected


# (the upstream's usage, the Anthropic usage): a count that is not one is estimated, side by side. A reading of
# 0 made the reply free for the client and for every budget.
INVALID_USAGE = [
    ({"prompt_tokens": 10**30, "completion_tokens": -5}, {"input_tokens": 3, "output_tokens": 2}),
    ({"prompt_tokens": 3.5, "completion_tokens": 7}, {"input_tokens": 3, "output_tokens": 7}),
    ({"prompt_tokens": 30, "completion_tokens": "7"}, {"input_tokens": 30, "output_tokens": 2}),
    ({"prompt_tokens": 30}, {"input_tokens": 30, "output_tokens": 2}),
    ({"prompt_tokens": 0, "completion_tokens": 0}, {"input_tokens": 0, "output_tokens": 0}),  # reported: kept
]


@pytest.mark.parametrize(("usage", "expected"), INVALID_USAGE, ids=[str(u) for u, _ in INVALID_USAGE])
def test_a_count_that_is_not_one_is_estimated(usage, expected) -> None:
    message = chat_response_to_message(chat({"content": "x" * 8}, "stop", usage), message_id="m",
                                       estimated_input_tokens=3)
    assert {k: message["usage"][k] for k in expected} == expected
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=3)
    stream.feed({"choices": [{"index": 0, "delta": {"content": "x" * 8}}]})
    stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
    stream.finish()
    assert {k: stream.usage[k] for k in expected} == expected
    assert stream.usage["input_tokens_estimated"] is (expected != {"input_tokens": 0, "output_tokens": 0})


def test_a_stream_without_usage_caps_its_output_estimate_the_same_way() -> None:
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=3, max_tokens=16)
    for piece in ("x" * 50, "y" * 31):  # 81 characters: 21 tokens at four a token, but at most 16
        stream.feed({"choices": [{"index": 0, "delta": {"content": piece}}]})
    stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    last_delta = next(frame for frame in stream.finish() if b"message_delta" in frame)
    assert b'"output_tokens":16' in last_delta and stream.usage["output_tokens"] == 16


@pytest.mark.parametrize("name, body, stops, content, reason, sequence, usage", CHAT_TO_MESSAGE,
                         ids=[row[0] for row in CHAT_TO_MESSAGE])
def test_chat_response_to_message(name, body, stops, content, reason, sequence, usage) -> None:
    message = chat_response_to_message(body, message_id="msg_1", stop_sequences=stops, estimated_input_tokens=12)
    assert message == {"id": "msg_1", "type": "message", "role": "assistant", "model": "smol", "content": content,
                       "stop_reason": reason, "stop_sequence": sequence, "usage": usage}
    anthropic.types.Message.model_validate(message)  # the SDK's own model accepts it


def message(content: list, stop_reason: str, usage: dict | None = None) -> dict:
    return {"id": "msg_9", "type": "message", "role": "assistant", "model": "claude-like", "content": content,
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or {"input_tokens": 20, "output_tokens": 5}}


O_USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 0},
           "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
TOOL_A = {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Oslo"}}
TOOL_B = {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}}

MESSAGE_TO_CHAT = [
    ("end_turn is stop; text blocks joined", message([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
                                                     "end_turn"), "Hello", None, "stop", O_USAGE),
    ("stop_sequence is stop", message([{"type": "text", "text": "a"}], "stop_sequence"), "a", None, "stop", O_USAGE),
    ("max_tokens is length", message([{"type": "text", "text": "a"}], "max_tokens"), "a", None, "length", O_USAGE),
    ("refusal is content_filter", message([], "refusal"), "", None, "content_filter", O_USAGE),
    ("tool_use blocks are tool calls; thinking dropped",
     message([{"type": "thinking", "thinking": "hm", "signature": "s"}, TOOL_A, TOOL_B], "tool_use"), None,
     [{"id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
      {"id": "toolu_b", "type": "function", "function": {"name": "time", "arguments": "{}"}}], "tool_calls", O_USAGE),
    ("cache tokens counted in prompt tokens and shown",
     message([{"type": "text", "text": "a"}], "end_turn", {"input_tokens": 5, "output_tokens": 1,
                                                          "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5}),
     "a", None, "stop", {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101,
                         "prompt_tokens_details": {"cached_tokens": 90}, "cache_read_input_tokens": 90,
                         "cache_creation_input_tokens": 5}),
]


@pytest.mark.parametrize("name, body, content, calls, finish, usage", MESSAGE_TO_CHAT,
                         ids=[row[0] for row in MESSAGE_TO_CHAT])
def test_message_to_chat_response(name, body, content, calls, finish, usage) -> None:
    completion = message_to_chat_response(body, completion_id="chatcmpl-9", created=1700000000)
    reply = {"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})}
    assert completion == {"id": "chatcmpl-9", "object": "chat.completion", "created": 1700000000,
                          "model": "claude-like", "usage": usage,
                          "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}]}
    openai.types.chat.ChatCompletion.model_validate(completion)


@pytest.mark.parametrize("name, body, content, calls, finish, usage", MESSAGE_TO_CHAT,
                         ids=[row[0] for row in MESSAGE_TO_CHAT])
def test_message_to_chat_response_not_strict(name, body, content, calls, finish, usage) -> None:
    """Portkey's non-strict answer (the portkey-ai SDKs' default): Anthropic's stop_reason as sent, every block
    but tool_use as ``content_blocks``, and the provider."""
    completion = message_to_chat_response(body, completion_id="chatcmpl-9", created=1700000000, strict=False)
    blocks = [block for block in body["content"] if block["type"] != "tool_use"]
    reply = {"role": "assistant", "content": content, "content_blocks": blocks,
             **({"tool_calls": calls} if calls else {})}
    assert completion == {"id": "chatcmpl-9", "object": "chat.completion", "created": 1700000000,
                          "model": "claude-like", "provider": "anthropic", "usage": usage,
                          "choices": [{"index": 0, "message": reply, "logprobs": None,
                                       "finish_reason": body["stop_reason"]}]}


ANTHROPIC_TYPES = [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
                   (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"),
                   (500, "api_error"), (529, "overloaded_error"), (503, "overloaded_error"),
                   (422, "invalid_request_error"), (502, "api_error")]


@pytest.mark.parametrize("status, error_type", ANTHROPIC_TYPES)
def test_openai_error_to_anthropic(status: int, error_type: str) -> None:
    body = {"error": {"message": "model is busy", "type": "whatever", "code": None}}
    assert openai_error_to_anthropic(status, body) == {
        "type": "error", "error": {"type": error_type, "message": "model is busy"}}


@pytest.mark.parametrize("body, raw, message", [
    ({"error": "plain text error"}, b"", "plain text error"),
    ({"detail": "Not Found"}, b"", "Not Found"),
    (None, b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (None, b"", "upstream returned HTTP 502"),
])
def test_error_message_from_odd_bodies(body: object, raw: bytes, message: str) -> None:
    assert openai_error_to_anthropic(502, body, raw)["error"]["message"] == message


@pytest.mark.parametrize("status, anthropic_type, openai_type", [
    (400, "invalid_request_error", "invalid_request_error"), (401, "authentication_error", "authentication_error"),
    (429, "rate_limit_error", "rate_limit_error"), (529, "overloaded_error", "server_error"),
    (500, "api_error", "server_error"), (413, "request_too_large", "invalid_request_error"),
])
def test_anthropic_error_to_openai(status: int, anthropic_type: str, openai_type: str) -> None:
    body = {"type": "error", "error": {"type": anthropic_type, "message": "nope"}}
    assert anthropic_error_to_openai(status, body) == {
        "error": {"message": "nope", "type": openai_type, "param": None, "code": None}}
    assert anthropic_error_to_openai(status, None, b"nope")["error"]["message"] == "nope"


def test_a_model_of_another_type_is_not_relayed() -> None:
    # A "model" of 12 reached the client as is, where both SDKs' types take a string.
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": 12,
               "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "usage": {}}
    completion = message_to_chat_response(message, completion_id="chatcmpl-9", created=1700000000)
    assert completion["model"] == ""
    openai.types.chat.ChatCompletion.model_validate(completion)
    translated = chat_response_to_message({**chat({"content": "hi"}, "stop"), "model": ["x"]}, message_id="msg_2")
    assert translated["model"] == ""
    anthropic.types.Message.model_validate(translated)


def test_tool_arguments_nested_deeper_than_the_gateway_writes_are_kept_raw():
    """orjson reads 1,024 levels and writes 254: arguments 300 deep were read, then could not be written back
    (a 500, or a stream cut without its error event)."""
    import orjson

    from sluicegate.providers.translate.chat_to_messages import tool_input

    deep = "1"
    for _ in range(300):
        deep = '{"a":' + deep + "}"
    assert tool_input(deep) == {"_raw": deep}
    orjson.dumps(tool_input(deep))  # writable
    shallow = '{"a":{"b":[1,2]}}'
    assert tool_input(shallow) == {"a": {"b": [1, 2]}}
