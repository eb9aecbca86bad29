"""How many tokens a request is reserved before the call (pure).

The prompt is estimated at one token per 4 characters of its text content, a Messages request's ``system``
included (the usual rule of thumb for English with BPE tokenizers), plus ``max_tokens`` /
``max_completion_tokens`` when the client sends one, else ``DEFAULT_COMPLETION_TOKENS``. The reservation is
replaced by the actual usage when the answer ends.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_COMPLETION_TOKENS = 1024
CHARS_PER_TOKEN = 4


def _text_chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(item) for item in value)
    if isinstance(value, dict):
        return sum(_text_chars(value.get(k)) for k in ("content", "text", "input", "prompt", "messages"))
    return 0


def prompt_tokens(body: dict[str, Any] | None) -> int:
    if not body:
        return 0
    chars = _text_chars(body.get("messages")) + _text_chars(body.get("prompt")) + _text_chars(body.get("input"))
    # A Messages request's system prompt sits beside its messages (Claude Code's is thousands of tokens):
    # left out, such a request reserved a fraction of its prompt and passed a token limit it alone exceeds.
    chars += _text_chars(body.get("system"))
    return -(-chars // CHARS_PER_TOKEN)


def completion_tokens(body: dict[str, Any] | None, default: int = DEFAULT_COMPLETION_TOKENS) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = (body or {}).get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        # A number written with a fraction (Python's json writes 4096.0) is still the client's bound: a
        # huge one reserves what it asks for (and is refused as more than the budget), never the default.
        if isinstance(value, float) and math.isfinite(value) and value >= 0:
            return math.ceil(value)
    return default


def reserved_tokens(body: dict[str, Any] | None, default: int = DEFAULT_COMPLETION_TOKENS) -> tuple[int, int]:
    """(prompt tokens, completion tokens) to reserve for this request."""
    return prompt_tokens(body), completion_tokens(body, default)


def cost(prompt: int, completion: int, price: tuple[float, float] | None) -> float | None:
    """Cost of a usage at (input, output) prices per token; None when the model has no price."""
    if price is None:
        return None
    return prompt * price[0] + completion * price[1]
