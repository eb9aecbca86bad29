"""An OpenAI Chat Completions stream as an Anthropic Messages stream: one state machine per request.

Anthropic's grammar: ``message_start``; then content blocks one at a time, each ``content_block_start``,
``content_block_delta``…, ``content_block_stop``, with indices 0, 1, 2 … that never overlap; then
``message_delta`` (stop_reason, usage) and ``message_stop``; or ``error`` at any point.

OpenAI streams tool calls by ``index`` and may interleave parallel calls, while an Anthropic block, once
stopped, can never be reopened. So only the first tool call streams live; later ones are kept whole and
sent after it, one block each, when the stream ends. Text after a tool call becomes a text block after the
tool blocks. Nothing is dropped: every call, every argument byte and every text delta reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .chat_to_messages import anthropic_usage, stop_reason, tool_input, usage_reported
from .errors import error_message, stream_error_type
from .estimate import estimate_output_tokens
from .frames import anthropic_frame
from .shapes import as_object, as_text


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatToMessagesStream:
    """Feed parsed OpenAI chunks (dicts); get Anthropic SSE frames (bytes) ready to write.

    ``estimated_input_tokens`` is required (``estimate.estimate_input_tokens`` of the client's request):
    ``message_start`` comes before the upstream's usage, and peers that put 0 there break budgets.
    ``finish()`` when the upstream ended cleanly (``data: [DONE]``), ``fail(message)`` on anything else
    (a cut connection, a timeout). After either, the object is spent and returns no more frames.
    """

    def __init__(self, *, message_id: str, estimated_input_tokens: int, model: str = "",
                 stop_sequences: tuple[str, ...] | list[str] = (), stream_tool_arguments: bool = True,
                 max_tokens: int | None = None) -> None:
        self._id, self._model, self._estimate = message_id, model, max(estimated_input_tokens, 0)
        self._max_tokens = max_tokens  # caps the output estimate when the upstream reports no usage
        self._stop_sequences, self._live_tools = tuple(stop_sequences), stream_tool_arguments
        self.started = self.closed = False
        self._next_index = 0
        self._text_block: int | None = None
        self._tools: dict[int, _ToolCall] = {}
        self._by_index: dict[int, int] = {}  # the upstream's tool-call index → the call it names now
        self._live: _ToolCall | None = None
        self._live_block = -1
        self._late_text: list[str] = []
        self._finish_reason: object = None
        self._matched_stop: object = None
        self._usage: dict[str, Any] | None = None
        self._generated = 0  # characters of text, tool names and arguments: the output estimate without usage

    @property
    def usage(self) -> dict[str, Any]:
        """Token counts for the request log; ``input_tokens_estimated`` when the upstream did not report both."""
        return {**anthropic_usage(self._usage, self._estimate,
                                   estimate_output_tokens(self._generated, self._max_tokens)),
                "input_tokens_estimated": not usage_reported(self._usage)}

    def feed(self, chunk: object) -> list[bytes]:
        if self.closed or not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            return self.fail(error_message(chunk), stream_error_type(chunk["error"]))
        frames = [] if self.started else self._message_start(chunk)
        if isinstance(chunk.get("usage"), dict) and chunk["usage"]:
            self._usage = chunk["usage"]
        for choice in _list(chunk.get("choices")):
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                frames += self._choice(choice)
        return frames

    def finish(self) -> list[bytes]:
        if self.closed:
            return []
        frames = [] if self.started else self._message_start({})
        frames += self._close_blocks()
        reason, sequence = stop_reason(self._finish_reason, self._matched_stop, self._stop_sequences,
                                       tool_called=bool(self._tools))
        usage = self.usage
        final_usage = {"output_tokens": usage["output_tokens"]}
        if self._usage is not None:  # the real counts replace message_start's estimate (cumulative fields)
            final_usage.update({k: usage[k] for k in ("input_tokens", "cache_read_input_tokens")})
        frames.append(self._frame({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
                                   "usage": final_usage}))
        frames.append(self._frame({"type": "message_stop"}))
        self.closed = True
        return frames

    def fail(self, message: str, error_type: str = "api_error") -> list[bytes]:
        """An ``error`` event: the client's SDK raises instead of seeing a clean (truncated) end."""
        if self.closed:
            return []
        self.closed = True
        return [self._frame({"type": "error", "error": {"type": error_type, "message": message}})]

    def _frame(self, event: dict[str, Any]) -> bytes:
        return anthropic_frame(event)

    def _message_start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._model = as_text(chunk.get("model")) or self._model
        usage = anthropic_usage(chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None, self._estimate)
        message: dict[str, Any] = {"id": self._id, "type": "message", "role": "assistant", "model": self._model,
                                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        self.started = True  # message_start is out: from now on a failure must be an error event
        return [self._frame({"type": "message_start", "message": message})]

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        delta = as_object(choice.get("delta"))
        frames: list[bytes] = []
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            frames += self._text(text)
        calls = delta.get("tool_calls")
        if not calls and isinstance(delta.get("function_call"), dict):  # the legacy single call
            calls = [{"index": 0, "function": delta["function_call"]}]
        for call in _list(calls):
            if isinstance(call, dict):
                frames += self._tool_delta(call)
        if choice.get("finish_reason"):
            self._finish_reason, self._matched_stop = choice["finish_reason"], choice.get("stop_reason")
        return frames

    def _text(self, text: str) -> list[bytes]:
        self._generated += len(text)
        if self._tools:
            self._late_text.append(text)
            return []
        frames: list[bytes] = []
        if self._text_block is None:
            self._text_block = self._open({"type": "text", "text": ""}, frames)
        frames.append(self._frame({"type": "content_block_delta", "index": self._text_block,
                                   "delta": {"type": "text_delta", "text": text}}))
        return frames

    def _open(self, block: dict[str, Any], frames: list[bytes]) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        frames.append(self._frame({"type": "content_block_start", "index": index, "content_block": block}))
        return index

    def _close(self, index: int) -> bytes:
        return self._frame({"type": "content_block_stop", "index": index})

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        if not self._tools and self._text_block is not None:
            frames.append(self._close(self._text_block))  # text then tools: the text block is done
        tool = self._tools.setdefault(self._tool_index(call), _ToolCall())
        function = as_object(call.get("function"))
        tool.id = tool.id or (call_id if isinstance(call_id := call.get("id"), str) else "")
        if not tool.name and isinstance(name := function.get("name"), str) and name:
            tool.name = name
            self._generated += len(name)
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            tool.arguments.append(piece)
            self._generated += len(piece)
            if tool is self._live:
                frames.append(self._json_delta(self._live_block, piece))
        if self._live is None and self._live_tools and tool.name and tool is next(iter(self._tools.values())):
            self._live, self._live_block = tool, self._open(self._tool_block(tool, 0), frames)
            if tool.arguments:
                frames.append(self._json_delta(self._live_block, "".join(tool.arguments)))
        return frames

    def _tool_index(self, call: dict[str, Any]) -> int:
        index, call_id = call.get("index"), call.get("id")
        if isinstance(index, int) and not isinstance(index, bool):
            # Some servers give parallel calls one index (each with its own id): a new id there is a new call,
            # and the deltas after it (index only) go on with it. Merged, two calls were one with "{}{}" input.
            mine = self._by_index.get(index)
            if mine is not None and not (call_id and self._tools[mine].id and self._tools[mine].id != call_id):
                return mine
            fresh = mine is None and index not in self._tools  # the usual case: the upstream's own index
            mine = self._by_index[index] = index if fresh else max(self._tools, default=-1) + 1
            return mine
        known = [index for index, tool in self._tools.items() if call_id and tool.id == call_id]
        if known:
            return known[0]
        if call_id or not self._tools:  # no index: a new id is a new call, else the last call goes on
            return max(self._tools, default=-1) + 1
        return max(self._tools)

    def _tool_block(self, tool: _ToolCall, position: int) -> dict[str, Any]:
        return {"type": "tool_use", "id": tool.id or f"toolu_{self._id}_{position}", "name": tool.name, "input": {}}

    def _json_delta(self, index: int, partial: str) -> bytes:
        return self._frame({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": partial}})

    def _close_blocks(self) -> list[bytes]:
        frames: list[bytes] = []
        if self._text_block is not None and not self._tools:
            frames.append(self._close(self._text_block))
        if self._live is not None:
            frames.append(self._close(self._live_block))
        for position, tool in enumerate(self._tools.values()):
            if tool is not self._live:
                frames += self._whole_tool(tool, position)
        if self._late_text:
            index = self._open({"type": "text", "text": ""}, frames)
            frames.append(self._frame({"type": "content_block_delta", "index": index,
                                       "delta": {"type": "text_delta", "text": "".join(self._late_text)}}))
            frames.append(self._close(index))
        return frames

    def _whole_tool(self, tool: _ToolCall, position: int) -> list[bytes]:
        """A buffered call in one go; its arguments are checked first, so a bad JSON text arrives as
        ``{"_raw": ...}`` (as in the non-streamed translation) instead of breaking the client's parser."""
        frames: list[bytes] = []
        index = self._open(self._tool_block(tool, position), frames)
        arguments = "".join(tool.arguments)
        if arguments.strip():
            frames.append(self._json_delta(index, orjson.dumps(tool_input(arguments)).decode()))
        frames.append(self._close(index))
        return frames


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
