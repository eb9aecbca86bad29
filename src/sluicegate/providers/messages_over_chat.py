"""A Messages API client (``POST /v1/messages``) over an OpenAI-spec upstream: the OpenAI spec's translations
for the ``messages`` and ``count_tokens`` endpoints.

The request goes up as a Chat Completions request (with ``stream_options.include_usage`` when streamed, so
the upstream reports usage), the answer, its errors and its stream come back as Anthropic's; the rules are
in ``translate/`` and docs/anthropic.md. ``count_tokens`` has no OpenAI endpoint: the gateway answers it
itself with its estimate (the same one ``message_start`` uses when an upstream reports no usage).
Per request: the translation keeps what the way back needs (stop sequences, the estimate, the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import UpstreamFailure
from ..jsontext import writable_json
from .contract import NO_ORIGIN, MeasuredUsage, Origin
from .translate import TranslationError
from .translate.chat_to_messages import chat_response_to_message, usage_reported
from .translate.errors import openai_error_to_anthropic
from .translate.estimate import estimate_input_tokens
from .translate.messages_to_chat import messages_request_to_chat
from .translate.stream_chat_to_messages import ChatToMessagesStream
from .translated_streams import ChatToMessagesDecoder


def parsed_json(raw: bytes) -> object:
    """The JSON in ``raw``, or None when it is not JSON (or not JSON the translation could write again)."""
    try:
        return writable_json(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def not_understood(what: str, why: TranslationError | None = None) -> UpstreamFailure:
    """A 2xx answer the gateway cannot translate: a failed attempt (502), retried or fallen back like one.
    ``why``: what the translator refused in it (a TranslationError raised on an answer is the upstream's
    fault, not the client's 400)."""
    return UpstreamFailure(f"the upstream's answer is not {what}" + (f" ({str(why)[:200]})" if why else ""), status=502)


class MessagesOverChat:
    """Anthropic in, OpenAI upstream, Anthropic out."""

    __slots__ = ("_estimate", "_max_tokens", "_model", "_origin", "_stop_sequences", "_usage")

    def __init__(self, origin: Origin = NO_ORIGIN) -> None:
        self._origin = origin
        self._stop_sequences: tuple[str, ...] = ()
        self._estimate = 0
        self._max_tokens: int | None = None
        self._model = ""
        self._usage: MeasuredUsage | None = None

    @property
    def message_id(self) -> str:
        return f"msg_{self._origin.request_id}"

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        request = dict(body or {})
        chat = messages_request_to_chat(request)  # TranslationError: the caller answers 400
        stops = request.get("stop_sequences")
        self._stop_sequences = tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()
        self._estimate = estimate_input_tokens(request)
        self._model = str(request.get("model") or "")
        max_tokens = request.get("max_tokens")
        self._max_tokens = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None
        return orjson.dumps(chat)

    def response_body(self, status: int, body: bytes) -> bytes:
        chat = parsed_json(body)
        if not isinstance(chat, dict) or not isinstance(chat.get("choices"), list):
            raise not_understood("a chat completion")
        reported = usage_reported(chat.get("usage"))
        try:
            message = chat_response_to_message(chat, message_id=self.message_id, stop_sequences=self._stop_sequences,
                                               estimated_input_tokens=self._estimate, max_tokens=self._max_tokens)
        except TranslationError as exc:
            raise not_understood("a chat completion", exc) from None
        usage = message["usage"]
        self._usage = MeasuredUsage(usage["input_tokens"] + usage["cache_read_input_tokens"],
                                    usage["output_tokens"], estimated=not reported)
        return orjson.dumps(message)

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        return openai_error_to_anthropic(status, parsed_json(raw), raw)

    def stream_decoder(self) -> ChatToMessagesDecoder:
        return ChatToMessagesDecoder(ChatToMessagesStream(
            message_id=self.message_id, estimated_input_tokens=self._estimate, model=self._model,
            max_tokens=self._max_tokens,
            stop_sequences=self._stop_sequences))

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        return None

    def measured_usage(self) -> MeasuredUsage | None:
        return self._usage


class CountTokensEstimate:
    """``/v1/messages/count_tokens`` for a spec without such an endpoint: the gateway's estimate."""

    __slots__ = ()

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        return b""  # never sent: local_answer answers

    def response_body(self, status: int, body: bytes) -> bytes:
        return body

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        return openai_error_to_anthropic(status, parsed_json(raw), raw)

    def stream_decoder(self) -> ChatToMessagesDecoder:
        return ChatToMessagesDecoder(ChatToMessagesStream(message_id="msg_0", estimated_input_tokens=0))

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        return orjson.dumps({"input_tokens": estimate_input_tokens(dict(body or {}))})

    def measured_usage(self) -> MeasuredUsage | None:
        return None
