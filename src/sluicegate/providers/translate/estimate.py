"""Rough token counts for when an OpenAI-spec upstream reports no usage: a Messages request's input, a reply's
output.

About four characters per token over every string the model reads (system, text, tool results, tool
inputs, tool names and schemas), a few tokens per message for the chat template, and a flat count per
image (base64 bytes are not text). Good to ±50 %: enough for ``message_start`` never to say 0, for cost
estimates and for limits; the request log marks the count as estimated.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 768


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of a ``/v1/messages`` body (at least 1)."""
    chars, images = _measure([body.get("system"), body.get("tools")])
    messages: list[Any] = body["messages"] if isinstance(body.get("messages"), list) else []
    more_chars, more_images = _measure(messages)
    chars, images = chars + more_chars, images + more_images
    return max(1, chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_IMAGE * images)


def estimate_output_tokens(characters: int, max_tokens: int | None = None) -> int:
    """Estimated output tokens of a reply with this many generated characters (text, tool names, tool
    arguments as sent): 0 for an empty reply, else at least 1, and never more than the request's
    ``max_tokens`` (a model stops there; short tokens would otherwise push the estimate past it). A stream
    counts the same characters as the whole reply, so the streamed and non-streamed translations agree."""
    estimate = -(-characters // CHARS_PER_TOKEN) if characters > 0 else 0
    return min(estimate, max_tokens) if isinstance(max_tokens, int) and max_tokens > 0 else estimate


def _measure(value: object) -> tuple[int, int]:
    """(characters of strings, images) in a JSON value; an image's source is counted as one image."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list):
        totals = [_measure(item) for item in value]
        return sum(t[0] for t in totals), sum(t[1] for t in totals)
    if isinstance(value, dict):
        if value.get("type") == "image":
            return 0, 1
        totals = [_measure(item) for key, item in value.items() if key not in ("type", "role", "cache_control")]
        return sum(t[0] for t in totals), sum(t[1] for t in totals)
    return 0, 0
