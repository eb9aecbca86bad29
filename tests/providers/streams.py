"""Helpers for the stream translation tests: decode frames, check Anthropic's event grammar, let the real
SDKs (over an in-process httpx transport, no socket) accumulate a translated stream."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx  # the SDKs are built on httpx2; its MockTransport answers in-process
import openai

from sluicegate.providers.translate.frames import SSEDecoder


def decode(frames: list[bytes]) -> list[tuple[str | None, Any]]:
    """Every frame as (event name, data), through the gateway's own decoder fed byte by byte."""
    decoder, events = SSEDecoder(), []
    for byte in b"".join(frames):
        events += decoder.push(bytes([byte]))
    assert decoder.pending == b""
    return events


def anthropic_events(frames: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for name, data in decode(frames):
        assert isinstance(data, dict) and name == data["type"], (name, data)  # event: matches data.type
        events.append(data)
    return events


def check_grammar(events: list[dict[str, Any]]) -> None:
    """message_start first; blocks one at a time with indices 0, 1, 2 …; message_delta, message_stop last;
    or an error event as the very last event (and then no message_stop)."""
    kinds = [event["type"] for event in events]
    assert kinds, "no event at all"
    if "error" in kinds:
        assert kinds.index("error") == len(kinds) - 1 and "message_stop" not in kinds, kinds
        body = events[:-1]
    else:
        assert kinds[-2:] == ["message_delta", "message_stop"], kinds
        body = events[:-2]
    if not body:
        return
    assert body[0]["type"] == "message_start", kinds
    open_index, next_index = None, 0
    for event in body[1:]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == next_index, (kinds, event)
            open_index, next_index = next_index, next_index + 1
        elif event["type"] in ("content_block_delta", "content_block_stop"):
            assert event["index"] == open_index, (kinds, event)
            open_index = None if event["type"] == "content_block_stop" else open_index
        else:
            raise AssertionError(f"unexpected {event['type']} inside the message: {kinds}")
    if "error" not in kinds:
        assert open_index is None, "a block left open before message_delta"


def _transport(body: bytes) -> httpx.Client:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return httpx.Client(transport=httpx.MockTransport(answer))


def anthropic_sdk_message(frames: list[bytes]) -> dict[str, Any]:
    """What ``messages.stream(...).get_final_message()`` of the real SDK makes of the frames."""
    client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9", http_client=_transport(b"".join(frames)),
                                 max_retries=0)
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message().model_dump(exclude_none=True)


def openai_sdk_chunks(frames: list[bytes]) -> list[Any]:
    """The chunks the real ``openai`` SDK yields for the frames (it raises on an error chunk)."""
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", http_client=_transport(b"".join(frames)),
                           max_retries=0)
    return list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))


def openai_sdk_completion(frames: list[bytes]) -> dict[str, Any]:
    """What ``chat.completions.stream(...).get_final_completion()`` of the real SDK makes of the frames."""
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", http_client=_transport(b"".join(frames)),
                           max_retries=0)
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as stream:
        completion = stream.get_final_completion().model_dump(exclude_none=True)
    for call in completion["choices"][0]["message"].get("tool_calls", []):
        call.pop("index", None)  # the SDK keeps the stream index; a non-streamed completion has none
    return completion


def accumulate_chat(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """An OpenAI stream folded into the Chat Completion a non-streamed call would return (tool calls by
    ``index``; id and name from their first appearance; content and arguments concatenated)."""
    content, calls, finish, usage, model, matched = [], {}, None, None, "", None
    for chunk in chunks:
        model = model or chunk.get("model", "")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                function = call.get("function") or {}
                entry["id"] = entry["id"] or call.get("id")
                entry["name"] = entry["name"] or function.get("name")
                entry["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
            matched = choice.get("stop_reason") or matched
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
            "name": c["name"], "arguments": c["arguments"]}} for _, c in sorted(calls.items())]
    body = {"id": "x", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "stop_reason": matched}]}
    return {**body, "usage": usage} if usage else body


def normalise(message: dict[str, Any]) -> dict[str, Any]:
    """A message with its text blocks folded into one leading block (block order of text is not
    meaningful to compare: text after a tool call streams after the tool blocks)."""
    text = "".join(block["text"] for block in message["content"] if block["type"] == "text")
    tools = [block for block in message["content"] if block["type"] == "tool_use"]
    return {**message, "content": ([{"type": "text", "text": text}] if text else []) + tools}

