"""Golden tables: a Messages request as a Chat request, and a Chat request as a Messages request."""

from __future__ import annotations

import pytest

from sluicegate.providers.translate import TranslationError
from sluicegate.providers.translate.chat_to_messages import DEFAULT_MAX_TOKENS, chat_request_to_messages
from sluicegate.providers.translate.messages_to_chat import messages_request_to_chat

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

MESSAGES_TO_CHAT = [
    (
        "system string, sampling, stop, user id, stream asks for usage",
        {"model": "m", "max_tokens": 64, "system": "Be brief.", "temperature": 0.2, "top_p": 0.9, "top_k": 40,
         "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}, "stream": True,
         "messages": [{"role": "user", "content": "Hi"}]},
        {"model": "m", "max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop": ["END"],
         "user": "u-1", "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
    ),
    (
        "system blocks joined; text blocks folded into one string",
        {"model": "m", "max_tokens": 8, "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B",
                                                   "cache_control": {"type": "ephemeral"}}],
         "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}]},
        {"model": "m", "max_tokens": 8,
         "messages": [{"role": "system", "content": "A\nB"}, {"role": "user", "content": "x\ny"}]},
    ),
    (
        "images: base64 as a data URL, url as is",
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is it?"}, {"type": "image", "source": PNG},
            {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}}]}]},
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is it?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}}]}]},
    ),
    (
        "tools, forced tool, parallel calls off",
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Weather?"}],
         "tools": [{"name": "weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA},
                   {"name": "noop", "input_schema": {"type": "object", "properties": {}}}],
         "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True}},
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Weather?"}],
         "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                                                     "parameters": WEATHER_SCHEMA}},
                   {"type": "function", "function": {"name": "noop",
                                                     "parameters": {"type": "object", "properties": {}}}}],
         "tool_choice": {"type": "function", "function": {"name": "weather"}}, "parallel_tool_calls": False},
    ),
    (
        "tool_use turn and tool results: order kept, text joined, is_error visible, then the user's text",
        {"model": "m", "max_tokens": 8, "messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "-3C"}, {"type": "text", "text": "snow"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "timeout", "is_error": True},
                {"type": "text", "text": "Summarise."}]}]},
        {"model": "m", "max_tokens": 8, "messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C\nsnow"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: timeout"},
            {"role": "user", "content": "Summarise."}]},
    ),
    (
        "text before a tool result still follows it: a tool message must come right after the tool calls",
        {"model": "m", "max_tokens": 8, "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "t", "input": {}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "note first"},
                {"type": "tool_result", "tool_use_id": "tu_1", "content": "res"},
                {"type": "text", "text": "and after"}]}]},
        {"model": "m", "max_tokens": 8, "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "tu_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "tu_1", "content": "res"},
            {"role": "user", "content": "note first\nand after"}]},
    ),
    (
        "tool_choice any is required, none is none; assistant of tool calls only has null content",
        {"model": "m", "max_tokens": 8, "tools": [{"name": "t", "input_schema": {"type": "object"}}],
         "tool_choice": {"type": "any"}, "messages": [
             {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "t", "input": {}}]}]},
        {"model": "m", "max_tokens": 8, "tools": [{"type": "function", "function": {
            "name": "t", "parameters": {"type": "object"}}}], "tool_choice": "required", "messages": [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "t", "arguments": "{}"}}]}]},
    ),
    (
        "thinking blocks of earlier turns are dropped",
        {"model": "m", "max_tokens": 8, "tool_choice": {"type": "none"}, "tools": [{"name": "t"}], "messages": [
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                              {"type": "text", "text": "Yes."}]}]},
        {"model": "m", "max_tokens": 8, "tool_choice": "none", "tools": [{"type": "function", "function": {
            "name": "t", "parameters": {"type": "object", "properties": {}}}}],
         "messages": [{"role": "assistant", "content": "Yes."}]},
    ),
]


@pytest.mark.parametrize("name, anthropic, openai", MESSAGES_TO_CHAT, ids=[row[0] for row in MESSAGES_TO_CHAT])
def test_messages_request_to_chat(name: str, anthropic: dict, openai: dict) -> None:
    assert messages_request_to_chat(anthropic) == openai


CHAT_TO_MESSAGES = [
    (
        "system and developer to system; default max_tokens; stop string; user to metadata",
        {"model": "m", "user": "u-2", "stop": "END", "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Use SI."},
                      {"role": "user", "content": "Hi"}]},
        {"model": "m", "system": "Be brief.\n\nUse SI.", "max_tokens": DEFAULT_MAX_TOKENS, "stop_sequences": ["END"],
         "metadata": {"user_id": "u-2"}, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
    ),
    (
        "max_completion_tokens wins; sampling kept; images to sources",
        {"model": "m", "max_completion_tokens": 50, "max_tokens": 10, "temperature": 0.5, "top_p": 0.8,
         "stop": ["a", "b"], "messages": [{"role": "user", "content": [
             {"type": "text", "text": "What is it?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
             {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg", "detail": "low"}}]}]},
        {"model": "m", "max_tokens": 50, "temperature": 0.5, "top_p": 0.8, "stop_sequences": ["a", "b"],
         "messages": [{"role": "user", "content": [
             {"type": "text", "text": "What is it?"}, {"type": "image", "source": PNG},
             {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}}]}]},
    ),
    (
        "tool calls to tool_use; consecutive tool results merged into one user turn with the next text",
        {"model": "m", "max_tokens": 10, "tool_choice": "required", "parallel_tool_calls": False,
         "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                                                     "parameters": WEATHER_SCHEMA}}],
         "messages": [
             {"role": "user", "content": "Oslo and Rome?"},
             {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
                 {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": "{bad"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "-3C"},
             {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "2"},
                                                                {"type": "text", "text": "0C"}]},
             {"role": "user", "content": "Summarise."}]},
        {"model": "m", "max_tokens": 10,
         "tools": [{"name": "weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA}],
         "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
         "messages": [
             {"role": "user", "content": "Oslo and Rome?"},
             {"role": "assistant", "content": [
                 {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
                 {"type": "tool_use", "id": "c2", "name": "weather", "input": {"_raw": "{bad"}}]},
             {"role": "user", "content": [
                 {"type": "tool_result", "tool_use_id": "c1", "content": "-3C"},
                 {"type": "tool_result", "tool_use_id": "c2", "content": "20C"},
                 {"type": "text", "text": "Summarise."}]}]},
    ),
    (
        "named tool choice; parameters missing become an empty object schema; empty assistant text dropped",
        {"model": "m", "max_tokens": 10, "tools": [{"type": "function", "function": {"name": "now"}}],
         "tool_choice": {"type": "function", "function": {"name": "now"}},
         "messages": [{"role": "user", "content": "Time?"},
                      {"role": "assistant", "content": "", "tool_calls": [
                          {"id": "c", "type": "function", "function": {"name": "now", "arguments": ""}}]}]},
        {"model": "m", "max_tokens": 10,
         "tools": [{"name": "now", "input_schema": {"type": "object", "properties": {}}}],
         "tool_choice": {"type": "tool", "name": "now"},
         "messages": [{"role": "user", "content": "Time?"},
                      {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "now", "input": {}}]}]},
    ),
]


@pytest.mark.parametrize("name, openai, anthropic", CHAT_TO_MESSAGES, ids=[row[0] for row in CHAT_TO_MESSAGES])
def test_chat_request_to_messages(name: str, openai: dict, anthropic: dict) -> None:
    assert chat_request_to_messages(openai) == anthropic


def test_default_max_tokens_is_an_argument() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    assert chat_request_to_messages(body, default_max_tokens=77)["max_tokens"] == 77


REFUSED_MESSAGES = [
    ({"model": "m"}, "messages"),
    ({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "metadata": {"user_id": {"a": 1}}},
     "metadata.user_id: a string is required"),
    ({"messages": [{"role": "system", "content": "x"}]}, "role"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "audio"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}, "image"),
    ({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool"),
    ({"messages": [], "tools": [{"name": "t"}], "tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "tool_use_id"),
    ({"messages": [], "stop_sequences": "END"}, "stop_sequences"),  # not ['E', 'N', 'D']
    ({"messages": [], "tools": 3}, "tools"),
    # Text that is no string went out as its Python repr (a missing document text as "").
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": {"a": 1}}}]}]},
     "document's text source needs its data as a string"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text"}}]}]}, "document"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": ["a"]}]}]}]},
     "tool_result: a text block's text must be a string"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
     r"messages \(user\): a text block's text must be a string"),
]


def test_tool_choice_without_tools_is_left_out() -> None:
    """OpenAI answers 400 to a tool_choice without tools; Anthropic accepts it, so the choice goes."""
    body = {"model": "m", "max_tokens": 8, "tool_choice": {"type": "auto"},
            "messages": [{"role": "user", "content": "Hi"}]}
    assert "tool_choice" not in messages_request_to_chat(body)


@pytest.mark.parametrize("body, word", REFUSED_MESSAGES)
def test_untranslatable_messages_request_is_a_clear_error(body: dict, word: str) -> None:
    with pytest.raises(TranslationError, match=word):
        messages_request_to_chat(body)


REFUSED_CHAT = [
    ({"messages": "hi"}, "messages"),
    ({"messages": [], "n": 2}, "n must be 1"),
    ({"messages": [], "response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "role 'function'"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}, "url"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
    ({"messages": [], "tools": [{"type": "function", "function": {}}]}, "tools"),
    ({"messages": [], "tool_choice": "sometimes"}, "tool_choice"),
    ({"messages": [], "stop": 3}, "stop"),
    ({"messages": [], "stop": ["a", 1]}, "stop"),
    ({"messages": [], "tools": {"type": "function"}}, "tools"),
    ({"messages": [], "tool_choice": {"function": True}}, "tool_choice"),
    ({"messages": [{"role": "assistant", "tool_calls": 3}]}, "tool_calls"),
    # What the Messages API refuses was sent to it: only a system prompt, only empty text; a user that is no
    # string went out as its Python repr.
    ({"messages": [{"role": "system", "content": "be brief"}]}, "needs a user or assistant message with content"),
    ({"messages": [{"role": "user", "content": ""}]}, "needs a user or assistant message with content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "needs a user or assistant"),
    ({"messages": [{"role": "user", "content": "x"}], "user": {"a": 1}}, "user: a string is required"),
]


@pytest.mark.parametrize("body, word", REFUSED_CHAT)
def test_untranslatable_chat_request_is_a_clear_error(body: dict, word: str) -> None:
    with pytest.raises(TranslationError, match=word):
        chat_request_to_messages(body)


def test_an_empty_stop_sequence_is_left_out_and_empty_text_is_not_sent():
    body = {"model": "m", "stop": ["", "END"], "messages": [
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}]}]}
    request = chat_request_to_messages(body)
    assert request["stop_sequences"] == ["END"] and request["messages"] == [{"role": "user", "content": "hi"}]
    assert "stop_sequences" not in chat_request_to_messages({**body, "stop": [""]})
