"""Anthropic shapes to OpenAI shapes: a Messages request to a Chat Completions request, and an
Anthropic Message response to a Chat Completion response. Rules and defaults: docs/anthropic.md.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import TranslationError, reported_count, token_count
from .estimate import estimate_output_tokens
from .shapes import as_object, as_text

PROVIDER = "anthropic"  # the ``provider`` of a non-strict answer and its chunks, as Portkey names it
TEXT_JOIN = "\n"  # between text blocks folded into one OpenAI string
TOOL_ERROR_PREFIX = "Error: "  # keeps a tool_result's is_error visible to the model
_IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})

FINISH_REASON_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def messages_request_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A ``POST /v1/messages`` body as a ``POST /v1/chat/completions`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise TranslationError("messages: a list is required")
    chat: dict[str, Any] = {"messages": _system_messages(body.get("system"))}
    for message in body["messages"]:
        chat["messages"].extend(_turn(message))
    for key in ("model", "max_tokens", "temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stop_sequences"):
        chat["stop"] = _strings(body["stop_sequences"], "stop_sequences")
    if body.get("tools"):
        chat["tools"] = [_tool(tool) for tool in _items(body["tools"], "tools")]
    if body.get("tool_choice") is not None and body.get("tools"):  # OpenAI refuses a choice without tools
        chat.update(_tool_choice(body["tool_choice"], bool(body.get("tools"))))
    user_id = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if user_id is not None:
        if not isinstance(user_id, str):  # an object went out as its Python repr
            raise TranslationError("metadata.user_id: a string is required")
        chat["user"] = user_id
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # usage in the last chunk, for real token counts
    return chat


def _strings(value: object, where: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise TranslationError(f"{where}: a list of strings is required")


def _items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{where}: a list is required")
    return value


def _system_messages(system: object) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if isinstance(system, list):
        return [{"role": "system", "content": TEXT_JOIN.join(_text_of_block(b, "system") for b in system)}]
    raise TranslationError("system: a string or a list of text blocks is required")


def _text_of_block(block: object, where: str) -> str:
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if isinstance(block, dict) and block.get("type") == "text":  # not "only text blocks": it is one
        raise TranslationError(f"{where}: a text block's text must be a string")
    raise TranslationError(f"{where}: only text blocks are allowed here")


def _blocks(content: object, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(block, dict) for block in content):
        return content
    raise TranslationError(f"{where}: content must be a string or a list of blocks")


def _turn(message: object) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise TranslationError("messages: each message needs role 'user' or 'assistant'")
    blocks = _blocks(message.get("content"), f"messages ({message['role']})")
    if message["role"] == "assistant":
        return [_assistant_turn(blocks)]
    return _user_turns(blocks)


def _user_turns(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages, in their order, then the other blocks one user message: a
    ``tool`` message must follow the assistant's ``tool_calls`` at once (OpenAI-spec servers refuse a user
    message between them), wherever the client put its text in the turn."""
    tools = [_tool_message(block) for block in blocks if block.get("type") == "tool_result"]
    parts = [_user_part(block) for block in blocks if block.get("type") != "tool_result"]
    return [*tools, _user_message(parts)] if parts or not tools else tools


def _user_message(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if all(part["type"] == "text" for part in parts):  # plain string: what every private server accepts
        return {"role": "user", "content": TEXT_JOIN.join(part["text"] for part in parts)}
    return {"role": "user", "content": parts}


def _user_part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text_of_block(block, "messages (user)")}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": image_url(block.get("source"))}}
    if kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
        data = block["source"].get("data")
        if not isinstance(data, str):  # str() sent an object as its Python repr, and no data as ""
            raise TranslationError("messages (user): a document's text source needs its data as a string")
        return {"type": "text", "text": data}
    raise TranslationError(f"messages (user): content block type {kind!r} has no Chat Completions equivalent")


def image_url(source: object) -> str:
    """An Anthropic image source as an OpenAI ``image_url.url``: a data URL for base64, the URL as is."""
    if isinstance(source, dict) and source.get("type") == "base64":
        if isinstance(source.get("media_type"), str) and isinstance(source.get("data"), str):
            return f"data:{source['media_type']};base64,{source['data']}"
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return source["url"]
    raise TranslationError("image: source must be {type: base64, media_type, data} or {type: url, url}")


def _tool_message(block: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(block.get("tool_use_id"), str):
        raise TranslationError("tool_result: tool_use_id is required")
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = TEXT_JOIN.join(_tool_result_text(part) for part in _blocks(content, "tool_result"))
    if block.get("is_error"):
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _tool_result_text(part: dict[str, Any]) -> str:
    if part.get("type") == "text":
        return _text_of_block(part, "tool_result")  # str() sent an object as its Python repr
    if part.get("type") == "image":  # a tool message holds text only: say an image was there
        return "[image omitted]"
    raise TranslationError(f"tool_result: content block type {part.get('type')!r} is not supported")


def _assistant_turn(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    texts, calls = [], []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(_text_of_block(block, "messages (assistant)"))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif not isinstance(kind, str) or kind not in _IGNORED_BLOCKS:  # a list there cannot be looked up
            raise TranslationError(f"messages (assistant): content block type {kind!r} is not supported")
    message: dict[str, Any] = {"role": "assistant", "content": TEXT_JOIN.join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise TranslationError("tool_use: id and name are required")
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}


def _tool(tool: object) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise TranslationError("tools: each tool needs a name")
    if tool.get("type") not in (None, "custom"):
        raise TranslationError(f"tools: server tool {tool.get('type')!r} is not available on this target")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(choice: object, has_tools: bool) -> dict[str, Any]:
    fields = as_object(choice)
    kind = fields.get("type")
    mapped: dict[str, Any]
    if kind == "auto":
        mapped = {"tool_choice": "auto"}
    elif kind == "any":
        mapped = {"tool_choice": "required"}
    elif kind == "none":
        mapped = {"tool_choice": "none"}
    elif kind == "tool" and isinstance(fields.get("name"), str):
        mapped = {"tool_choice": {"type": "function", "function": {"name": fields["name"]}}}
    else:
        raise TranslationError("tool_choice: type must be auto, any, tool (with a name) or none")
    if has_tools and fields.get("disable_parallel_tool_use"):
        mapped["parallel_tool_calls"] = False
    return mapped


def message_to_chat_response(message: dict[str, Any], *, completion_id: str, created: int,
                             estimated_input_tokens: int | None = None, max_tokens: int | None = None,
                             strict: bool = True) -> dict[str, Any]:
    """An Anthropic Message (a ``/v1/messages`` response) as a Chat Completion. Counts the upstream did not
    report are estimated: ``estimated_input_tokens``, and the output from what it generated (at most
    ``max_tokens``). ``strict=False`` (Portkey's non-strict OpenAI compliance, what the portkey-ai SDKs ask
    for) adds ``provider``, the message's ``content_blocks`` (every block but ``tool_use``, as Anthropic sent
    it) and keeps Anthropic's own ``stop_reason`` as the ``finish_reason``."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise TranslationError("upstream message: content list missing")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use":
            calls.append(_tool_call({**block, "id": block.get("id") or f"call_{completion_id}_{len(calls)}"}))
            continue
        blocks.append(block)
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if not strict:
        reply["content_blocks"] = blocks
    if calls:
        reply["tool_calls"] = calls
    finish = finish_reason(message.get("stop_reason"), tool_calls=bool(calls), strict=strict)
    generated = sum(map(len, texts)) + sum(len(call["function"]["arguments"]) for call in calls)
    chat: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": as_text(message.get("model")),
    }
    if not strict:
        chat["provider"] = PROVIDER
    chat["choices"] = [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}]
    chat["usage"] = chat_usage(message.get("usage"), estimated_input_tokens=estimated_input_tokens,
                               estimated_output_tokens=estimate_output_tokens(generated, max_tokens))
    return chat


def anthropic_usage_reported(usage: object) -> bool:
    """Did an Anthropic upstream report both counts, each a real one (else ``chat_usage`` estimated some)?"""
    return (isinstance(usage, dict) and reported_count(usage.get("input_tokens")) is not None
            and reported_count(usage.get("output_tokens")) is not None)


def finish_reason(stop_reason: object, *, tool_calls: bool = False, strict: bool = True) -> str:
    """The OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (unknown or missing: ``stop``; any tool
    call: ``tool_calls``). Not ``strict``: the ``stop_reason`` itself, as Portkey answers without strict
    OpenAI compliance (a missing one is still mapped)."""
    if not strict and isinstance(stop_reason, str) and stop_reason:
        return stop_reason
    if tool_calls:
        return "tool_calls"
    return FINISH_REASON_BY_STOP_REASON.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_usage(usage: object, *, estimated_input_tokens: int | None = None,
               estimated_output_tokens: int = 0) -> dict[str, Any]:
    """Anthropic usage as OpenAI usage: prompt tokens include cache reads and writes, as OpenAI's do;
    the cache counts stay visible in ``prompt_tokens_details`` and Anthropic's own two fields. A count the
    upstream did not report is the estimate given (a client, a budget or a cost reading 0 would take the
    reply as free)."""
    usage = usage if isinstance(usage, dict) else {}
    fresh = reported_count(usage.get("input_tokens"))
    if fresh is None:
        fresh = max(estimated_input_tokens or 0, 0)
    output = reported_count(usage.get("output_tokens"))
    if output is None:
        output = max(estimated_output_tokens, 0)
    read = token_count(usage.get("cache_read_input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    prompt = fresh + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }
