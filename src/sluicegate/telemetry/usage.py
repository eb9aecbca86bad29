"""Token usage and the answering model, read from what the upstream sent (pure functions).

A JSON answer is parsed once, here, when the record's rows are built. A stream is never parsed as a whole: the relay's
StreamTap hands over its head (the first events) and its last chunks, where the usage chunk lives; when a
stream carries no usage, completion tokens are estimated from the number of content events (OpenAI-style
servers send about one token per event) and the prompt from its length, and the usage is marked estimated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ..providers import sse

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers; only for estimates
# The request log's token columns are INTEGER (32 bits on PostgreSQL). An upstream that reports more has sent
# no token count: such usage is logged as unknown, rather than failing its row.
MAX_TOKENS = 2**31 - 1


class Usage(NamedTuple):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool = False


class Answer(NamedTuple):
    usage: Usage | None
    model: str | None


NO_ANSWER = Answer(None, None)


def usage_of(value: Any) -> Usage | None:
    """OpenAI's ``usage``, or Anthropic's (a relayed ``/v1/messages`` answer, a passthrough), whose prompt is
    ``input_tokens`` plus the cache's reads and writes, as its translation to OpenAI's counts it (OpenAI's
    ``prompt_tokens`` hold the cached tokens already)."""
    if not isinstance(value, dict):
        return None
    if "prompt_tokens" in value:
        prompt = _int(value["prompt_tokens"])
    else:
        prompt = _int(value.get("input_tokens"))
        if prompt is not None:
            prompt += (_int(value.get("cache_read_input_tokens")) or 0) + (
                _int(value.get("cache_creation_input_tokens")) or 0)
    completion = _int(value.get("completion_tokens", value.get("output_tokens")))
    total = _int(value.get("total_tokens"))
    if prompt is None and completion is None and total is None:
        return None
    prompt, completion = prompt or 0, completion or 0
    return Usage(prompt, completion, total if total is not None else prompt + completion)


def fits(used: Usage) -> bool:
    """Can the log's columns hold these counts (whatever reported or estimated them)?"""
    return max(used.prompt_tokens, used.completion_tokens, used.total_tokens) <= MAX_TOKENS


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def from_json_body(body: bytes | None) -> Answer:
    """Usage and model of a complete JSON answer; nothing for anything else."""
    if not body or body[:1] not in (b"{", b" ", b"\n"):
        return NO_ANSWER
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return NO_ANSWER
    if not isinstance(parsed, dict):
        return NO_ANSWER
    model = parsed.get("model")
    return Answer(usage_of(parsed.get("usage")), model if isinstance(model, str) else None)


class StreamView:
    """A stream's head and kept tail, each event split out and parsed at most once: reading the usage and
    the model, then estimating the completion when there is no usage, judge the same few events.

    ``whole``: the tail holds every chunk after the head, so the end may be in the head (a short stream
    often arrives in the very read that found its first content).
    """

    __slots__ = ("_head", "_head_events", "_parsed", "_tail", "_tail_events", "_whole")

    def __init__(self, head: bytes, tail: bytes, whole: bool) -> None:
        self._head, self._tail, self._whole = head, tail, whole
        self._parsed: dict[bytes, tuple[bytes | None, Any]] = {}
        self._head_events: list[bytes] | None = None
        self._tail_events: list[bytes] | None = None

    def answer(self) -> Answer:
        """Usage from the last event that carries one; the model from the first event that names it."""
        usage = None
        # Only an event whose bytes name a key can carry it (servers do not escape key names): the others
        # are not parsed. Parsing is most of what reading a stream's answer costs.
        for event in reversed(self._ending_events()):
            if b'"usage"' not in event:
                continue
            chunk = self._chunk(event)
            if isinstance(chunk, dict):
                usage = usage_of(chunk.get("usage"))
                if usage is not None:
                    break
        if b"message_start" in self._head:
            head_chunks = [c for c in map(self._chunk, self._head_split()) if isinstance(c, dict)]
            start = next((c["message"] for c in head_chunks if c.get("type") == "message_start"
                          and isinstance(c.get("message"), dict)), None)
            if start is not None:  # an Anthropic stream: input tokens at the start, output tokens at the end
                model = start.get("model")
                return Answer(_anthropic_stream_usage(start.get("usage"), usage),
                              model if isinstance(model, str) else None)
        for event in self._head_split():  # the model from the first event that names it
            if b'"model"' in event:
                chunk = self._chunk(event)
                if isinstance(chunk, dict) and isinstance(chunk.get("model"), str):
                    return Answer(usage, chunk["model"])
        return Answer(usage, None)

    def completion_estimate(self, events_after_head: int) -> int:
        """Content events in the stream: every ``data:`` event, minus those seen to carry no content.

        Events without content (the role-only first chunk, the finish_reason chunk, [DONE]) sit at the start
        and at the end, so only the head and the kept tail are classified; the middle is all content. When
        the tail holds every chunk after the head, the stream is judged event by event.
        """
        if self._whole:
            return sum(1 for e in self._ending_events() if self._carries_tokens(e))
        total = self._head.count(b"data:") + events_after_head
        # Only complete events are judged: the head may end mid-event and the tail may begin mid-event.
        judged = self._head_split() + self._ending_events()[1:]
        empty = sum(1 for e in judged if self._data(e) is not None and not self._carries_tokens(e))
        return max(total - empty, 0)

    def _head_split(self) -> list[bytes]:
        if self._head_events is None:
            self._head_events = sse.split_events(self._head)[0]
        return self._head_events

    def _ending_events(self) -> list[bytes]:
        """The complete events of the tail (of the head and the tail, when the tail is all that followed)."""
        if self._tail_events is None:
            self._tail_events = sse.split_events(self._head + self._tail if self._whole else self._tail)[0]
        return self._tail_events

    def _parse(self, event: bytes) -> tuple[bytes | None, Any]:
        """(the event's data, its JSON: ``_NOT_JSON`` when it has none)."""
        found = self._parsed.get(event)
        if found is None:
            data, chunk = _data(event), _NOT_JSON
            if data is not None and data != b"[DONE]":
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    pass
            found = self._parsed[event] = (data, chunk)
        return found

    def _data(self, event: bytes) -> bytes | None:
        return self._parse(event)[0]

    def _chunk(self, event: bytes) -> Any:
        return self._parse(event)[1]

    def _carries_tokens(self, event: bytes) -> bool:
        """Generated text in this event? (A finish_reason or usage-only chunk, or [DONE], carries none; nor
        does an Anthropic event other than a content delta.)"""
        data, chunk = self._parse(event)
        if data is None or data == b"[DONE]":
            return False
        if chunk is _NOT_JSON or not isinstance(chunk, dict):
            return True  # not ours to judge: count it
        if chunk.get("type") == "content_block_delta":  # a relayed Anthropic stream's text, thinking, tool input
            return True
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if choice.get("text") or (isinstance(delta, dict) and any(delta.get(name) for name in _TOKEN_FIELDS)):
                return True
        return False


_NOT_JSON = object()  # an event whose data is absent, [DONE], or not JSON
_TOKEN_FIELDS = ("content", "reasoning_content", "tool_calls", "function_call", "refusal")


def _data(event: bytes) -> bytes | None:
    if b"\n" not in event and b"\r" not in event:  # one line, the usual event: no list, no join
        return event[5:].lstrip() if event.startswith(b"data:") else None
    lines = [line[5:].lstrip() for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def from_stream(head: bytes, tail: bytes, whole: bool) -> Answer:
    """Usage from the last event that carries one; the model from the first event that names it
    (StreamView.answer)."""
    return StreamView(head, tail, whole).answer()


def _anthropic_stream_usage(start: Any, end: Usage | None) -> Usage | None:
    """message_start's input tokens (the cache's reads and writes included) with message_delta's cumulative
    counts, whose own input count, when it has one, is the later word."""
    begun = usage_of(start)
    if begun is None:
        return end
    prompt = begun.prompt_tokens
    if end is not None and end.prompt_tokens:
        prompt = end.prompt_tokens
    completion = end.completion_tokens if end is not None else begun.completion_tokens
    return Usage(prompt, completion, prompt + completion)


def estimate_completion(head: bytes, tail: bytes, events_after_head: int, whole: bool) -> int:
    """Content events in a stream (StreamView.completion_estimate)."""
    return StreamView(head, tail, whole).completion_estimate(events_after_head)


def estimate_prompt(body: Any) -> int:
    """Prompt tokens from the request's text: a rough count, marked as estimated wherever it is used."""
    if not isinstance(body, dict):
        return 0
    chars = 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict):
            chars += _text_length(message.get("content"))
    chars += _text_length(body.get("prompt")) + _text_length(body.get("input"))
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(part.get("text") if isinstance(part, dict) else part) for part in value)
    return 0
