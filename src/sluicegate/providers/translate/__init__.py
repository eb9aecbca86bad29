"""Translation between the Anthropic Messages API and the OpenAI Chat Completions API, both ways.

Pure modules (no I/O, no clock, no randomness: ids and times are arguments), one per direction:

- ``messages_to_chat``: Anthropic shapes to OpenAI shapes (a Messages request to a Chat request, a
  Message response to a Chat completion);
- ``chat_to_messages``: OpenAI shapes to Anthropic shapes (the reverse pair);
- ``stream_chat_to_messages`` / ``stream_messages_to_chat``: per-request stream state machines;
- ``errors``: error envelopes of one API in the other's form;
- ``frames``: SSE frame encoding and decoding for both APIs.

The rules and defaults are in docs/anthropic.md.
"""


class TranslationError(ValueError):
    """The request cannot be expressed in the target API: the caller answers 400 invalid_request_error."""


# A reported token count past this is no count: sums of such counts would outgrow the 64 bits the JSON
# encoder writes, and an answer that carried them could not be answered at all.
MAX_TOKEN_COUNT = 2**53 - 1


def reported_count(value: object) -> int | None:
    """A token count as an upstream reported it, or None when it is not one (negative, a boolean, another
    type, or past MAX_TOKEN_COUNT)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT else None


def token_count(value: object) -> int:
    """A token count an upstream reported, or 0 for anything that is not one (negative, a boolean, another
    type, or past MAX_TOKEN_COUNT)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TOKEN_COUNT else 0
