"""OpenAI shapes to Anthropic shapes: a Chat Completions request to a Messages request, and a Chat
Completion response to an Anthropic Message. Rules and defaults: docs/anthropic.md.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ...jsontext import writable_json
from . import TranslationError, reported_count, token_count
from .estimate import estimate_output_tokens
from .shapes import as_object, as_text

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI clients often send none
SYSTEM_JOIN = "\n\n"  # between system/developer messages folded into the one Anthropic system prompt
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)

STOP_REASON_BY_FINISH_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def chat_request_to_messages(body: dict[str, Any], *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """A ``POST /v1/chat/completions`` body as a ``POST /v1/messages`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise TranslationError("messages: a list is required")
    if body.get("n") not in (None, 1):
        raise TranslationError("n: an anthropic-spec target returns one choice; n must be 1")
    _refuse_response_format(body.get("response_format"))
    system, turns = _split_system(body["messages"])
    request: dict[str, Any] = {"messages": _merge_same_role(turns)}
    if body.get("model") is not None:
        request["model"] = body["model"]
    if system:
        request["system"] = SYSTEM_JOIN.join(system)
    request["max_tokens"] = _max_tokens(body, default_max_tokens)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            request[key] = body[key]
    stop = [sequence for sequence in _strings(body.get("stop"), "stop") if sequence]  # "" stops nothing
    if stop:
        request["stop_sequences"] = stop
    if body.get("tools"):
        request["tools"] = [_tool(tool) for tool in _items(body["tools"], "tools")]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice and body.get("tools"):
        request["tool_choice"] = choice
    if body.get("user") is not None:
        if not isinstance(body["user"], str):
            raise TranslationError("user: a string is required")
        request["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        request["stream"] = True
    if not request["messages"]:  # the Messages API refuses an empty list: the request was sent anyway
        raise TranslationError("messages: an anthropic-spec target needs a user or assistant message with content "
                               "besides the system prompt")
    return request


def _strings(value: object, where: str) -> list[str]:
    """A string or a list of strings as a list (None as empty)."""
    if value is None or isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise TranslationError(f"{where}: a string or a list of strings is required")


def _items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{where}: a list is required")
    return value


def _refuse_response_format(response_format: object) -> None:
    if response_format is None or (isinstance(response_format, dict) and response_format.get("type") == "text"):
        return
    raise TranslationError("response_format: an anthropic-spec target has no JSON mode; describe it in a tool")


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TranslationError(f"{key}: a positive integer is required")
            return value
    return default


def _split_system(messages: list[object]) -> tuple[list[str], list[dict[str, Any]]]:
    system, turns = [], []
    for message in messages:
        if not isinstance(message, dict):
            raise TranslationError("messages: each message must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content"), role))
        elif role == "user":
            turns.append({"role": "user", "content": _user_blocks(message.get("content"))})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_blocks(message)})
        elif role == "tool":
            turns.append({"role": "user", "content": [_tool_result(message)]})
        else:
            raise TranslationError(f"messages: role {role!r} is not supported (use system, user, assistant, tool)")
    return system, turns


def text_of(content: object, where: str) -> str:
    """The text of an OpenAI content: a string, or the text parts of a list joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict)]
        if len(parts) == len(content) and all(part.get("type") == "text" for part in parts):
            return "".join(str(part.get("text", "")) for part in parts)
    raise TranslationError(f"messages ({where}): content must be a string or a list of text parts")


def _user_blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []  # the Messages API refuses empty text
    if not isinstance(content, list):
        raise TranslationError("messages (user): content must be a string or a list of parts")
    return [block for block in map(_user_block, content) if block["type"] != "text" or block["text"]]


def _user_block(part: object) -> dict[str, Any]:
    fields = as_object(part)
    kind = fields.get("type")
    if kind == "text":
        return {"type": "text", "text": str(fields.get("text", ""))}
    if kind == "image_url":
        url = fields.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        return {"type": "image", "source": image_source(url)}
    raise TranslationError(f"messages (user): content part type {kind!r} has no Messages equivalent")


def image_source(url: object) -> dict[str, Any]:
    """An OpenAI ``image_url.url`` as an Anthropic image source: base64 for a data URL, else a URL."""
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url: url is required")
    match = _DATA_URL.match(url)
    if match:
        return {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise TranslationError("image_url: url must be a data: URL with base64 or an http(s) URL")


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message.get("content"), "assistant")
    if text:  # Anthropic refuses empty text blocks
        blocks.append({"type": "text", "text": text})
    for call in _items(message.get("tool_calls") or [], "tool_calls"):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise TranslationError("tool_calls: each call needs an id and a function")
        arguments = function.get("arguments")
        blocks.append({"type": "tool_use", "id": call["id"], "name": str(function.get("name", "")),
                       "input": tool_input(arguments if isinstance(arguments, str) else "")})
    return blocks


def tool_input(arguments: str) -> dict[str, Any]:
    """Tool-call arguments (a JSON text) as a tool_use ``input`` object. Empty arguments are ``{}``;
    anything that is not a JSON object is kept whole as ``{"_raw": arguments}``, so nothing is lost. So is
    an object nested deeper than the gateway can write back (``writable_json``): read, it became a 500,
    or a stream cut without its error event."""
    if not arguments.strip():
        return {}
    try:
        parsed = writable_json(arguments.encode("utf-8", "surrogatepass"))
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(message.get("tool_call_id"), str):
        raise TranslationError("messages (tool): tool_call_id is required")
    return {"type": "tool_result", "tool_use_id": message["tool_call_id"],
            "content": text_of(message.get("content"), "tool")}


def _merge_same_role(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive turns of one role become one (tool results then text in one user turn), as
    Anthropic requires alternating roles; a turn of one text block is sent as a plain string."""
    merged: list[dict[str, Any]] = []
    for turn in turns:
        if not turn["content"]:
            continue
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"].extend(turn["content"])
        else:
            merged.append({"role": turn["role"], "content": list(turn["content"])})
    for turn in merged:
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return merged


def _tool(tool: object) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise TranslationError("tools: each tool must be {type: function, function: {name, ...}}")
    converted: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        converted["description"] = function["description"]
    converted["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return converted


def _tool_choice(choice: object, parallel: object) -> dict[str, Any] | None:
    mapped: dict[str, Any] | None
    if choice is None:
        mapped = None
    elif choice in ("auto", "required", "none"):
        mapped = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and isinstance(
            choice["function"].get("name"), str):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise TranslationError("tool_choice: auto, required, none or {type: function, function: {name}}")
    if parallel is False and (mapped is None or mapped["type"] != "none"):
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    return mapped


def chat_response_to_message(
    chat: dict[str, Any], *, message_id: str, stop_sequences: tuple[str, ...] | list[str] = (),
    estimated_input_tokens: int | None = None, max_tokens: int | None = None,
) -> dict[str, Any]:
    """A Chat Completion as an Anthropic Message. ``stop_sequences`` (the client's) tell a matched stop
    sequence from a natural end; ``estimated_input_tokens`` stands in when the upstream gave no usage, and
    an output estimate capped at the client's ``max_tokens``."""
    if not isinstance(chat, dict):
        raise TranslationError("upstream completion: an object is required")
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    reply = as_object(choice.get("message"))
    content: list[dict[str, Any]] = []
    text = _reply_text(reply)
    if text:
        content.append({"type": "text", "text": text})
    for position, call in enumerate(_calls_of(reply)):
        content.append(tool_use_block(call, f"toolu_{message_id}_{position}"))
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), stop_sequences,
                                   tool_called=any(block["type"] == "tool_use" for block in content))
    usage = chat.get("usage") if isinstance(chat.get("usage"), dict) else None
    generated = len(text) + sum(_call_characters(as_object(call.get("function"))) for call in _calls_of(reply))
    return {
        "id": message_id, "type": "message", "role": "assistant", "model": as_text(chat.get("model")),
        "content": content, "stop_reason": reason, "stop_sequence": sequence,
        "usage": anthropic_usage(usage, estimated_input_tokens, estimate_output_tokens(generated, max_tokens)),
    }


def _call_characters(function: dict[str, Any]) -> int:
    """What a tool call generated, in characters: its name and its arguments' JSON text."""
    name, arguments = function.get("name"), function.get("arguments")
    return (len(name) if isinstance(name, str) else 0) + (len(arguments) if isinstance(arguments, str) else 0)


def _reply_text(reply: dict[str, Any]) -> str:
    content = reply.get("content")
    if isinstance(content, list):  # some servers answer with text parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) and content else str(reply.get("refusal") or "")


def _calls_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    listed = reply.get("tool_calls")
    calls = [call for call in listed if isinstance(call, dict)] if isinstance(listed, list) else []
    legacy = reply.get("function_call")
    if not calls and isinstance(legacy, dict):
        calls = [{"function": legacy}]
    return calls


def tool_use_block(call: dict[str, Any], fallback_id: str) -> dict[str, Any]:
    """One OpenAI tool call as a tool_use block (a missing id gets ``fallback_id``)."""
    function = as_object(call.get("function"))
    arguments = function.get("arguments")
    return {"type": "tool_use", "id": call.get("id") or fallback_id, "name": str(function.get("name") or ""),
            "input": tool_input(arguments if isinstance(arguments, str) else "")}


def stop_reason(finish_reason: object, matched_stop: object, stop_sequences: tuple[str, ...] | list[str],
                *, tool_called: bool) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). A tool call wins over any finish_reason; ``stop_sequence`` needs the
    upstream to say which stop matched (vLLM's ``choice.stop_reason``) and it to be one the client sent."""
    if tool_called:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched_stop, str) and matched_stop in stop_sequences:
        return "stop_sequence", matched_stop
    if not isinstance(finish_reason, str):
        return "end_turn", None
    return STOP_REASON_BY_FINISH_REASON.get(finish_reason, "end_turn"), None


def anthropic_usage(usage: dict[str, Any] | None, estimated_input_tokens: int | None = None,
                    estimated_output_tokens: int = 0) -> dict[str, Any]:
    """OpenAI usage as Anthropic usage: OpenAI's prompt tokens include cached ones, Anthropic's
    ``input_tokens`` do not (they are in ``cache_read_input_tokens``). Without usage, the estimates stand in
    (a client or a budget reading 0 output tokens would take the reply as free), and so they do for a count
    that is not one (negative, fractional, past any real count): each side on its own."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details")
    cached = token_count(details.get("cached_tokens") if isinstance(details, dict) else 0)
    prompt = reported_count(usage.get("prompt_tokens"))
    if prompt is None:
        prompt, cached = max(estimated_input_tokens or 0, 0), 0
    completion = reported_count(usage.get("completion_tokens"))
    if completion is None:
        completion = max(estimated_output_tokens, 0)
    return {"input_tokens": max(prompt - cached, 0), "output_tokens": completion,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": min(cached, prompt)}


def usage_reported(usage: object) -> bool:
    """Did the upstream report both counts, each a real one (else ``anthropic_usage`` estimated some)?"""
    return (isinstance(usage, dict) and reported_count(usage.get("prompt_tokens")) is not None
            and reported_count(usage.get("completion_tokens")) is not None)
