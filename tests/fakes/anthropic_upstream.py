"""A scripted Anthropic-spec upstream (``/v1/messages``, ``/v1/messages/count_tokens``): the OpenAI fake's
server and script (upstream.py), with Anthropic's default answers and event framing.

``push(Reply(stream=message_events(...)))`` scripts a stream: its events are dicts framed as Anthropic frames
them (``event: <type>`` plus the JSON data). With an empty script it answers like a small model, echoing the
last user text, and counts tokens as four characters each.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.upstream import FakeUpstream, Reply


def frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def message(content: list[dict[str, Any]] | str, *, model: str = "claude-fake", stop_reason: str = "end_turn",
            input_tokens: int = 9, output_tokens: int = 4) -> dict[str, Any]:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


def message_events(content: list[dict[str, Any]] | str, *, stop_reason: str | None = None, input_tokens: int = 9,
                   output_tokens: int = 4, model: str = "claude-fake") -> list[bytes]:
    """A whole stream for a message: text streamed word by word, tool inputs as two JSON halves, a thinking
    block as its text and its signature."""
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    reason = stop_reason or ("tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn")
    start = message([], model=model, input_tokens=input_tokens, output_tokens=1)
    start["stop_reason"] = None
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(blocks):
        events += _block_events(index, block)
    events += [{"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens}}, {"type": "message_stop"}]
    return [frame(event) for event in events]


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "text":
        words = block["text"].split(" ")
        deltas = [{"type": "text_delta", "text": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words)]
        opened = {"type": "text", "text": ""}
    elif block["type"] == "thinking":  # as Anthropic streams extended thinking: the text, then its signature
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]}]
        opened = {"type": "thinking", "thinking": "", "signature": ""}
    else:
        text = orjson.dumps(block["input"]).decode()
        half = len(text) // 2
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in (text[:half], text[half:])]
        opened = {**block, "input": {}}
    return [{"type": "content_block_start", "index": index, "content_block": opened},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index}]


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        content = " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return str(content)


class AnthropicUpstream(FakeUpstream):
    def _default_reply(self, request: web.Request, body: bytes) -> Reply:
        try:
            parsed = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            parsed = {}
        if not isinstance(parsed, dict):
            parsed = {}
        if request.path.endswith("/count_tokens"):
            return Reply(json={"input_tokens": max(1, len(body) // 4)})
        text = f"echo: {_last_user_text(parsed)}"
        if parsed.get("stream") is True:
            return Reply(stream=message_events(text, model=parsed.get("model", "claude-fake")))
        return Reply(json=message(text, model=parsed.get("model", "claude-fake")))
