"""The OpenAI API spec (OpenAI itself, vLLM, llama.cpp, TGI, Ollama's /v1, LM Studio, private proxies …).

Pure functions only. Requests and successful responses pass through untouched: unknown parameters
(vLLM's ``top_k``, ``chat_template_kwargs`` …) must reach the model and unknown response fields must reach
the client, which is exactly where Portkey's open-source gateway falls short (it whitelists parameters).
The client speaks this spec too, so its translation is the identity (``Passthrough``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from . import sse
from .contract import FAILED, HOLD, NO_ORIGIN, START, MeasuredUsage, Opening, Origin, Translation
from .messages_over_chat import CountTokensEstimate, MessagesOverChat
from .translate.frames import openai_error_frame

NAME = "openai"

ENDPOINT_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "messages": "/chat/completions",  # an Anthropic client, translated (messages_over_chat.py)
}

_ERROR_TEXT_LIMIT = 2000
_TAIL = 256  # enough bytes to see "data: [DONE]" at the end of what was relayed, and keep-alives after it
_CLOSED_EARLY = "upstream closed the stream before it finished"
_SENT_AN_ERROR = "upstream sent an error event"
# What may begin an error event (an "error" event name, an "error" key in an event's JSON): the relayed bytes
# are parsed only around it. In a JSON string a quote is escaped, so content text saying "error": does not match.
_ERROR_MARK = sse.Mark(rb'(?:^|[\r\n])event: ?error[\r\n]|"error"\s*:', b"error")
_MARK_SPAN = 16  # a mark split across two reads is seen in this many bytes either side of the split


def endpoint_path(endpoint: str) -> str | None:
    """The path appended to the base URL for a unified endpoint; None when the spec lacks it."""
    return ENDPOINT_PATHS.get(endpoint)


def auth_headers(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"}


def error_body(status: int, raw: bytes, provider: str) -> dict[str, Any]:
    """Rewrite an upstream error into the unified envelope ``{"error": {...}, "provider": ...}``.

    The message is prefixed with the provider id, as Portkey does, so a client can tell an upstream
    refusal from a gateway one.
    """
    error: dict[str, Any] = {"message": "", "type": None, "param": None, "code": None}
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = None
    upstream = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(upstream, dict):
        error.update({k: upstream.get(k) for k in ("type", "param", "code")})
        message = upstream.get("message")
    elif isinstance(upstream, str):  # some servers answer {"error": "text"}
        message = upstream
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        message = parsed["message"]
    else:
        message = raw[:_ERROR_TEXT_LIMIT].decode("utf-8", "replace").strip()
    error["message"] = f"{provider} error: {message or f'HTTP {status}'}"
    return {"error": error, "provider": provider}


def _is_done(event: bytes) -> bool:
    return sse.event_data(event) == b"[DONE]"


class PassthroughStream:
    """An OpenAI-style SSE stream relayed byte for byte: events are parsed only until the first content, and
    after it only where an error event may be (``_ERROR_MARK``) or the end (``[DONE]``). An error event after
    the start ends the stream as failed: logged as such, and never cached for replay (the client has the
    upstream's own event, scrubbed of the credentials the gateway sent: ``hide_echoes``; an unfinished event
    is held back until it is whole, as what marks an error may come after the key it echoes). The stream is
    cut just after its first whole ``data: [DONE]`` event: what the upstream sends after it is not relayed,
    even when it came in the same read."""

    __slots__ = ("_ended", "_error", "_held", "_pending", "_scanned", "_scrub", "_tail")

    def __init__(self) -> None:
        self._held = b""
        self._scanned = 0
        self._tail = b""
        self._error = False
        self._pending = b""  # the start of an event, held back until it is whole (it may be an error)
        self._ended = False  # a whole [DONE] event has been relayed
        self._scrub: Callable[[bytes], bytes] | None = None

    def hide_echoes(self, scrub: Callable[[bytes], bytes]) -> None:
        """How to scrub relayed bytes that hold an upstream error event of the credentials the gateway sent
        (dispatch.py): an upstream that echoes its request's key in an error handed it to the client."""
        self._scrub = scrub

    def opening(self, chunk: bytes) -> Opening:
        self._held += chunk
        events, rest = sse.split_events(self._held[self._scanned:])
        for event in events:
            kind, message, status = sse.classify_event(event)
            if kind == sse.ERROR:
                return Opening(FAILED, message, status, sse.event_data(event))
            if self._starts(kind, event):
                return START
        self._scanned = len(self._held) - len(rest)  # resume after the last complete event
        return HOLD

    def _starts(self, kind: str, event: bytes) -> bool:
        return kind in (sse.CONTENT, sse.DONE)

    def head(self) -> bytes:
        held = self._held
        if (b"[DONE]" in held or _ERROR_MARK.found(held, self._scanned)  # in the events after the first content
                or not held.endswith(sse.EVENT_ENDS)):
            return self._judged(b"", held)
        self._tail = held[-_TAIL:]
        return held

    def relay(self, chunk: bytes) -> bytes:
        if self._ended:
            return b""
        if self._pending:
            chunk, self._pending = self._pending + chunk, b""
        else:
            seam = self._tail[-_MARK_SPAN:] + chunk[:_MARK_SPAN]  # a mark split across two reads
            if not (b"[DONE]" in chunk or b"[DONE]" in seam or _ERROR_MARK.found(chunk) or _ERROR_MARK.found(seam)
                    or not chunk.endswith(sse.EVENT_ENDS)):
                self._tail = chunk[-_TAIL:] if len(chunk) >= _TAIL else (self._tail + chunk)[-_TAIL:]
                return chunk  # most reads: whole events, a few scans in C
        return self._judged(self._tail, chunk)

    def _judged(self, relayed: bytes, chunk: bytes) -> bytes:
        """``chunk`` (after the ``relayed`` bytes, which may begin inside an event: a fragment is never an error
        nor the end) where the end or an error event may be. Cut just after the first whole ``[DONE]`` event
        (the SDKs took what followed one in the same read for more of the stream, and the relay judged it
        cut); else an unfinished last event held back until it is whole (``sse.held_back``: what marks an
        error may come after the key it echoes); and when the bytes relayed hold an error event, the stream
        fails, and the chunk is scrubbed."""
        window = relayed + chunk
        end = self._end_of_stream(window)
        if end is not None:
            chunk, window = chunk[:max(end - len(relayed), 0)], window[:end]
        elif keep := sse.held_back(chunk, window, sse.ends_with_done):
            self._pending, chunk, window = chunk[-keep:], chunk[:-keep], window[:-keep]
        if _ERROR_MARK.found(window) and self._holds_error(window):
            self._error = True
            if self._scrub is not None and chunk:
                chunk = self._scrub(chunk)
        self._tail = window[-_TAIL:]
        return chunk

    def _end_of_stream(self, relayed: bytes) -> int | None:
        """Just past the first whole ``data: [DONE]`` event in ``relayed``, or None when it has none."""
        end = sse.past_first(relayed, b"[DONE]", _is_done)
        self._ended = end is not None
        return end

    @staticmethod
    def _holds_error(relayed: bytes) -> bool:
        # A split event has lost its blank line, which the mark's "event: error" line may have ended with.
        return any(b"error" in event and sse.classify_event(event)[0] == sse.ERROR
                   for event in sse.split_events(relayed)[0])

    def end_failure(self) -> str | None:
        if self._error:
            return _SENT_AN_ERROR
        return None if sse.ends_with_done(self._tail) else _CLOSED_EARLY

    def error_event(self, message: str, error_type: str) -> bytes:
        if self._error:
            return b""  # the upstream's own error event told the client
        return openai_error_frame(message, error_type)

    def measured_usage(self) -> MeasuredUsage | None:
        return None  # the log reads the usage chunk from the relayed bytes


class ProxyStream(PassthroughStream):
    """A stream on a passthrough path (``/v1/responses``, a server's own streaming route): not a Chat
    Completions stream, so neither its content nor its end can be judged by that shape (the Responses API's
    events carry no ``choices`` and end with ``response.completed``, never ``[DONE]``: held back as "no
    content" they failed as a 502). It starts with its first event that carries data and ends cleanly when
    the upstream ends it; an error event is still one (before the start: a failed attempt, after it: a
    failed stream), and a broken connection is the relay's to tell."""

    __slots__ = ()

    def _starts(self, kind: str, event: bytes) -> bool:
        return kind != sse.EMPTY or sse.event_data(event) is not None

    def end_failure(self) -> str | None:
        return _SENT_AN_ERROR if self._error else None


class Passthrough:
    """OpenAI in, OpenAI out: the client's bytes go upstream untouched unless the gateway edited the body."""

    __slots__ = ()

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        return orjson.dumps(body) if edited and body is not None else raw

    def response_body(self, status: int, body: bytes) -> bytes:
        return body

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        return error_body(status, raw, provider)

    def stream_decoder(self) -> PassthroughStream:
        return PassthroughStream()

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        return None

    def measured_usage(self) -> MeasuredUsage | None:
        return None


class Proxy(Passthrough):
    """A passthrough path: the bytes both ways as they are, a stream judged only by its errors."""

    __slots__ = ()

    def stream_decoder(self) -> PassthroughStream:
        return ProxyStream()


_PASSTHROUGH = Passthrough()  # stateless: one for every request
PROXY = Proxy()
_COUNT_TOKENS = CountTokensEstimate()


# Which of the account a client's own key is used under: its say alone, never over a stored credential.
_ACCOUNT_OPTIONS = (("x-portkey-openai-organization", "OpenAI-Organization"),
                    ("x-portkey-openai-project", "OpenAI-Project"))


class OpenAISpec:
    __slots__ = ()
    name: str = NAME  # annotated: mypyc reads it through an import cycle

    def endpoint_path(self, endpoint: str) -> str | None:
        return endpoint_path(endpoint)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return auth_headers(api_key)

    def client_headers(self, endpoint: str, incoming: Mapping[str, str], *,
                       own_credential: bool = False) -> dict[str, str]:
        # The portkey-ai SDKs' openaiBeta / openaiOrganization / openaiProject options (x-portkey-openai-*),
        # as OpenAI's API names them; a bare OpenAI-Beta too.
        headers = {}
        beta = incoming.get("x-portkey-openai-beta") or incoming.get("openai-beta")
        if beta:
            headers["OpenAI-Beta"] = beta
        if not own_credential:
            for option, name in _ACCOUNT_OPTIONS:
                if value := incoming.get(option):
                    headers[name] = value
        return headers

    def translation(self, endpoint: str, origin: Origin = NO_ORIGIN) -> Translation:
        if endpoint == "messages":
            return MessagesOverChat(origin)
        if endpoint == "count_tokens":
            return _COUNT_TOKENS
        if endpoint == "proxy":
            return PROXY
        return _PASSTHROUGH


SPEC: OpenAISpec = OpenAISpec()  # annotated: mypyc reads it through an import cycle
