"""The anthropic SDK against the real private model (llama.cpp's server speaks the OpenAI API): /v1/messages
is translated to Chat Completions and back, non-streamed and streamed. The model's words are never asserted,
only the message's structure and what a client relies on (stop reason, usage, the stream's grammar)."""

from __future__ import annotations

import anthropic

from tests.e2e_real.clients import MODEL, SHORT, direct_headers


def client(gateway, upstream_v1: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="no-key-needed", max_retries=0,
                               default_headers=direct_headers(upstream_v1))


def _assert_message(message) -> None:
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"] and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0  # never the 0 of message_start that breaks clients' budgets
    # Streamed, llama.cpp's server reports no usage: the gateway's estimate stands in, never 0 for a reply
    # with text and never past max_tokens.
    assert 0 < message.usage.output_tokens <= SHORT


def test_messages_create_through_translation(gateway, smol):
    message = client(gateway, smol.v1).messages.create(
        model=MODEL, max_tokens=SHORT, system="You are terse.", messages=[{"role": "user", "content": "Say hi."}])
    _assert_message(message)


def test_a_max_tokens_cap_is_reported_as_max_tokens(gateway, smol):
    message = client(gateway, smol.v1).messages.create(
        model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Write a long story about the sea."}])
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens <= 3


def test_messages_stream_through_translation(gateway, smol):
    with client(gateway, smol.v1).messages.stream(
            model=MODEL, max_tokens=SHORT, messages=[{"role": "user", "content": "List three fruits."}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    _assert_message(final)
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_start" in events and "message_delta" in events
    assert "text" in events  # the SDK's own text events: deltas arrived live
