"""The Anthropic Messages API spec (Anthropic itself, and private servers that speak ``/v1/messages``:
vLLM, llama.cpp's server …).

- ``messages`` / ``count_tokens`` (an Anthropic client): relayed as is, streams included (``AnthropicRelay``
  judges their start and end); errors keep Anthropic's envelope.
- ``chat`` (an OpenAI client): translated Chat → Messages and back (``ChatOverMessages``), streams through
  the ``MessagesToChatStream`` state machine; errors in the OpenAI envelope. ``Origin.strict`` (the effective
  ``strict_open_ai_compliance``) picks strict OpenAI shapes or Portkey's non-strict ones (the raw
  ``stop_reason``, ``content_blocks``, ``provider``).

The credential travels as ``x-api-key``; ``anthropic-version`` (the client's, else 2023-06-01, which the API
requires) and ``anthropic-beta`` (when the client sends it) are protocol headers, taken from the client's
request whatever the forward list says. Pure functions and per-request objects only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .contract import NO_ORIGIN, MeasuredUsage, Origin, Translation
from .messages_over_chat import not_understood, parsed_json
from .translate import TranslationError
from .translate.chat_to_messages import chat_request_to_messages
from .translate.errors import anthropic_error, anthropic_error_to_openai, error_message
from .translate.estimate import estimate_input_tokens
from .translate.messages_to_chat import anthropic_usage_reported, message_to_chat_response
from .translate.stream_messages_to_chat import MessagesToChatStream
from .translated_streams import AnthropicRelay, MessagesToChatDecoder

NAME = "anthropic"
DEFAULT_VERSION = "2023-06-01"

ENDPOINT_PATHS = {
    "chat": "/messages",
    "messages": "/messages",
    "count_tokens": "/messages/count_tokens",
}


def anthropic_error_body(status: int, raw: bytes) -> dict[str, Any]:
    """An Anthropic-spec upstream's error for an Anthropic client: its own envelope when it has one."""
    parsed = parsed_json(raw)
    if isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        if isinstance(error.get("type"), str) and isinstance(error.get("message"), str):
            return parsed
    return anthropic_error(status, error_message(parsed, raw, status))


class MessagesRelay:
    """Anthropic in, Anthropic out: the client's bytes go upstream untouched unless the gateway edited them."""

    __slots__ = ()

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        return orjson.dumps(body) if edited and body is not None else raw

    def response_body(self, status: int, body: bytes) -> bytes:
        return body

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        return anthropic_error_body(status, raw)

    def stream_decoder(self) -> AnthropicRelay:
        return AnthropicRelay()

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        return None

    def measured_usage(self) -> MeasuredUsage | None:
        return None


_RELAY = MessagesRelay()  # stateless: one for every request


class ChatOverMessages:
    """OpenAI in, Anthropic upstream, OpenAI out."""

    __slots__ = ("_estimate", "_include_usage", "_max_tokens", "_measured", "_model", "_origin")

    def __init__(self, origin: Origin = NO_ORIGIN) -> None:
        self._origin = origin
        self._include_usage = False
        self._model = ""
        self._estimate = 0  # the input tokens, estimated: what the answer says when the upstream reports none
        self._max_tokens: int | None = None
        self._measured: MeasuredUsage | None = None

    @property
    def completion_id(self) -> str:
        return f"chatcmpl-{self._origin.request_id}"

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        request = dict(body or {})
        messages = chat_request_to_messages(request)  # TranslationError: the caller answers 400
        self._estimate = estimate_input_tokens(messages)
        max_tokens = messages.get("max_tokens")
        self._max_tokens = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None
        options = request.get("stream_options")
        self._include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self._model = str(request.get("model") or "")
        return orjson.dumps(messages)

    def response_body(self, status: int, body: bytes) -> bytes:
        message = parsed_json(body)
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise not_understood("an Anthropic message")
        try:
            chat = message_to_chat_response(message, completion_id=self.completion_id, created=self._origin.created,
                                            estimated_input_tokens=self._estimate, max_tokens=self._max_tokens,
                                            strict=self._origin.strict)
        except TranslationError as exc:
            raise not_understood("an Anthropic message", exc) from None
        if not anthropic_usage_reported(message.get("usage")):  # the log marks the estimate as one
            usage = chat["usage"]
            self._measured = MeasuredUsage(usage["prompt_tokens"], usage["completion_tokens"], estimated=True)
        return orjson.dumps(chat)

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        error = anthropic_error_to_openai(status, parsed_json(raw), raw)["error"]
        error["message"] = f"{provider} error: {error['message']}"  # the unified envelope's form (openai.py)
        return {"error": error, "provider": provider}

    def stream_decoder(self) -> MessagesToChatDecoder:
        return MessagesToChatDecoder(MessagesToChatStream(
            completion_id=self.completion_id, created=self._origin.created, model=self._model,
            include_usage=self._include_usage, estimated_input_tokens=self._estimate, max_tokens=self._max_tokens,
            strict=self._origin.strict))

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        return None

    def measured_usage(self) -> MeasuredUsage | None:
        return self._measured  # None when the upstream reported its usage: the log reads the answer's


class AnthropicSpec:
    __slots__ = ()
    name: str = NAME  # annotated: mypyc reads it through an import cycle

    def endpoint_path(self, endpoint: str) -> str | None:
        return ENDPOINT_PATHS.get(endpoint)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def client_headers(self, endpoint: str, incoming: Mapping[str, str], *,
                       own_credential: bool = False) -> dict[str, str]:
        # Bare, or as the portkey-ai SDKs' anthropicVersion / anthropicBeta options send them.
        version = incoming.get("anthropic-version") or incoming.get("x-portkey-anthropic-version")
        headers = {"anthropic-version": version or DEFAULT_VERSION}
        beta = incoming.get("anthropic-beta") or incoming.get("x-portkey-anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        return headers

    def translation(self, endpoint: str, origin: Origin = NO_ORIGIN) -> Translation:
        if endpoint == "chat":
            return ChatOverMessages(origin)
        return _RELAY


SPEC: AnthropicSpec = AnthropicSpec()  # annotated: mypyc reads it through an import cycle
