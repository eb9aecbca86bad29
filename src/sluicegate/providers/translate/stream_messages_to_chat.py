"""An Anthropic Messages stream as an OpenAI Chat Completions stream: one state machine per request.

Text deltas become ``delta.content``; each tool_use block becomes one ``tool_calls`` entry with its own
``index`` (0, 1, … in block order), its start carrying id and name, its ``input_json_delta``s the
``arguments``; ``message_delta``'s stop_reason becomes the ``finish_reason`` chunk; ``message_stop`` ends
with an optional usage chunk and ``data: [DONE]``. ``ping`` and thinking blocks are dropped; an
``error`` event becomes an error chunk (the OpenAI SDKs raise on it), never a clean end.

Not ``strict`` (Portkey's non-strict OpenAI compliance, what the portkey-ai SDKs ask for): every chunk says
``provider: "anthropic"``, the deltas of the blocks that are not tool calls (text, thinking …) also come as
``delta.content_blocks`` (``[{"index": <block index>, "delta": <Anthropic's delta without its type>}]``), and
the ``finish_reason`` is Anthropic's ``stop_reason`` as sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import OPENAI_TYPE_BY_ANTHROPIC_TYPE, error_message
from .estimate import estimate_output_tokens
from .frames import DONE_FRAME, openai_error_frame, openai_frame
from .messages_to_chat import PROVIDER, anthropic_usage_reported, chat_usage, finish_reason
from .shapes import as_object, as_text


class MessagesToChatStream:
    """Feed parsed Anthropic events (dicts); get OpenAI SSE frames (bytes) ready to write.

    ``finish()`` when the upstream connection ended: nothing more after ``message_stop``, an error chunk
    if it never came (a truncated stream). ``fail(message)`` for a cut, a timeout, any other failure.
    ``include_usage`` mirrors the client's ``stream_options.include_usage``; ``strict=False``: Portkey's
    non-strict chunks (the module's docstring).
    """

    def __init__(self, *, completion_id: str, created: int, model: str = "", include_usage: bool = False,
                 estimated_input_tokens: int | None = None, max_tokens: int | None = None,
                 strict: bool = True) -> None:
        self._id, self._created, self._model, self._include_usage = completion_id, created, model, include_usage
        self._strict = strict
        self._estimated_input_tokens, self._max_tokens = estimated_input_tokens, max_tokens
        self._generated = 0  # characters of text and tool arguments: the output estimate without usage
        self.started = self.closed = False
        self._tool_by_block: dict[int, int] = {}
        self._without_arguments: set[int] = set()  # tool blocks that have sent no argument text yet
        self._usage: dict[str, Any] = {}
        self._finish_reason: str | None = None

    @property
    def usage(self) -> dict[str, Any]:
        """OpenAI usage so far, for the request log (counts the upstream did not report: estimated)."""
        return chat_usage(self._usage, estimated_input_tokens=self._estimated_input_tokens,
                          estimated_output_tokens=estimate_output_tokens(self._generated, self._max_tokens))

    @property
    def usage_reported(self) -> bool:
        return anthropic_usage_reported(self._usage)

    def feed(self, event: object) -> list[bytes]:
        if self.closed or not isinstance(event, dict):
            return []
        kind = event.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, event) if handler else []  # ping and unknown events: nothing to say

    def finish(self) -> list[bytes]:
        return [] if self.closed else self.fail("upstream stream ended before message_stop")

    def fail(self, message: str, error_type: str = "server_error") -> list[bytes]:
        if self.closed:
            return []
        self.closed = True
        return [openai_error_frame(message, error_type)]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return openai_frame(self._chunk_object(choices=[{"index": 0, "delta": delta, "logprobs": None,
                                                         "finish_reason": finish}]))

    def _chunk_object(self, **fields: Any) -> dict[str, Any]:
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}
        if not self._strict:
            chunk["provider"] = PROVIDER
        return chunk | fields

    def _with_block(self, delta: dict[str, Any], index: object, block_delta: dict[str, Any]) -> dict[str, Any]:
        """``delta`` with the Anthropic block delta as ``content_blocks`` when not strict."""
        if self._strict:
            return delta
        return delta | {"content_blocks": [{"index": index, "delta": block_delta}]}

    def _on_message_start(self, event: dict[str, Any]) -> list[bytes]:
        message = as_object(event.get("message"))
        self._model = as_text(message.get("model")) or self._model
        self._merge_usage(message.get("usage"))
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, event: dict[str, Any]) -> list[bytes]:
        block = as_object(event.get("content_block"))
        opened = {key: value for key, value in block.items() if key != "type"}
        if block.get("type") == "text":
            return ([self._chunk(self._with_block({"content": block["text"]}, event.get("index"), opened))]
                    if as_text(block.get("text")) else [])
        if block.get("type") != "tool_use":
            # Thinking and server-tool blocks have no Chat Completions form; not strict, a start that
            # carries something (a redacted_thinking's data) is a content block delta.
            if self._strict or not any(opened.values()):
                return []
            return [self._chunk(self._with_block({}, event.get("index"), opened))]
        index = event.get("index")
        if not isinstance(index, int):
            return []
        position = self._tool_by_block.setdefault(index, len(self._tool_by_block))
        arguments = orjson.dumps(block["input"]).decode() if block.get("input") else ""
        if not arguments:
            self._without_arguments.add(index)
        call = {"index": position, "id": as_text(block.get("id")), "type": "function",
                "function": {"name": as_text(block.get("name")), "arguments": arguments}}
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = as_object(event.get("delta"))
        index = event.get("index")
        block_delta = {key: value for key, value in delta.items() if key != "type"}
        if delta.get("type") == "text_delta" and as_text(delta.get("text")):
            self._generated += len(delta["text"])
            return [self._chunk(self._with_block({"content": delta["text"]}, index, block_delta))]
        position = self._tool_by_block.get(index) if isinstance(index, int) else None
        if delta.get("type") == "input_json_delta" and as_text(delta.get("partial_json")) and position is not None:
            self._without_arguments.discard(index)
            self._generated += len(delta["partial_json"])
            call = {"index": position, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        if self._strict or position is not None or not any(block_delta.values()):
            return []  # a tool call's piece is in tool_calls; an empty text or argument piece says nothing
        # Thinking, signature, citations, a server tool's input …
        return [self._chunk(self._with_block({}, index, block_delta))]

    def _on_block_stop(self, event: dict[str, Any]) -> list[bytes]:
        """A call without arguments says ``{}``: clients json-parse ``arguments`` and "" is no JSON."""
        index = event.get("index")
        if not isinstance(index, int) or index not in self._without_arguments:
            return []
        self._without_arguments.discard(index)
        position = self._tool_by_block[index]
        return [self._chunk({"tool_calls": [{"index": position, "function": {"arguments": "{}"}}]})]

    def _on_message_delta(self, event: dict[str, Any]) -> list[bytes]:
        self._merge_usage(event.get("usage"))
        delta = as_object(event.get("delta"))
        self._finish_reason = finish_reason(delta.get("stop_reason"), tool_calls=bool(self._tool_by_block),
                                            strict=self._strict)
        return [self._chunk({}, self._finish_reason)]

    def _on_message_stop(self, _event: dict[str, Any]) -> list[bytes]:
        frames = [] if self._finish_reason else [self._chunk({}, "tool_calls" if self._tool_by_block else "stop")]
        if self._include_usage:
            frames.append(openai_frame(self._chunk_object(choices=[], usage=self.usage)))
        self.closed = True
        return frames + [DONE_FRAME]

    def _on_error(self, event: dict[str, Any]) -> list[bytes]:
        error = as_object(event.get("error"))
        kind = error.get("type")
        return self.fail(error_message(event), OPENAI_TYPE_BY_ANTHROPIC_TYPE.get(kind, "server_error")
                         if isinstance(kind, str) else "server_error")

    def _merge_usage(self, usage: object) -> None:
        """Anthropic usage fields are cumulative: a later value replaces an earlier one."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})


_HANDLERS = {
    "message_start": MessagesToChatStream._on_message_start,
    "content_block_start": MessagesToChatStream._on_block_start,
    "content_block_delta": MessagesToChatStream._on_block_delta,
    "content_block_stop": MessagesToChatStream._on_block_stop,
    "message_delta": MessagesToChatStream._on_message_delta,
    "message_stop": MessagesToChatStream._on_message_stop,
    "error": MessagesToChatStream._on_error,
}
