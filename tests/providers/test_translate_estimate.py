"""The input-token estimate that stands in when an OpenAI-spec upstream reports no usage."""

from __future__ import annotations

from sluicegate.providers.translate.estimate import estimate_input_tokens

BIG_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 400_000}}


def test_text_counts_about_four_characters_a_token() -> None:
    body = {"system": "x" * 400, "messages": [{"role": "user", "content": "y" * 400}]}
    assert estimate_input_tokens(body) == 200 + 4


def test_an_empty_request_is_still_one_token_not_zero() -> None:
    assert estimate_input_tokens({"messages": []}) == 1


def test_base64_image_bytes_are_not_counted_as_text() -> None:
    body = {"messages": [{"role": "user", "content": [BIG_IMAGE, {"type": "text", "text": "z" * 40}]}]}
    assert estimate_input_tokens(body) == 768 + 10 + 4


def test_tools_and_tool_traffic_count() -> None:
    tools = [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    turns = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "weather",
                                                "input": {"city": "Oslo"}}]}]
    with_tools = estimate_input_tokens({"messages": turns, "tools": tools})
    assert with_tools > estimate_input_tokens({"messages": turns}) > estimate_input_tokens({"messages": []})
