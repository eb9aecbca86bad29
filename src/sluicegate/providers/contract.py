"""The provider contract: what an API spec module gives the gateway, written down as Protocols.

A spec (``openai.py``, ``anthropic.py``) is one module exposing one object that satisfies ``ApiSpec``, plus
one line in ``registry.py``. Nothing else in the gateway knows a spec by name.

The gateway speaks the OpenAI wire format to its clients, and Anthropic's on /v1/messages. For each
prepared request (one target of one client request), ``ApiSpec.translation(endpoint, origin)`` returns a
``Translation``: the request body on its way to the upstream (client → upstream), the answer on its way
back (upstream → client), the error envelopes, and a fresh ``StreamDecoder`` per response stream. Being
per request, a translation may remember what it sent (the stop sequences, the model asked for) to
translate the answer back; a stateless one may be shared. A spec that speaks what the client speaks
forwards the bytes untouched; one that does not (an OpenAI client and an Anthropic-spec server, or the
reverse) translates in both directions (the rules: ``translate/`` and docs/anthropic.md). Credentials are
applied by the caller after the body is translated (``prepare.py``), so a translation never sees them.

Everything here is pure: no network, clock or randomness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

# What StreamDecoder.opening says about the stream so far.
PENDING = "pending"  # no content yet: keep holding the start back
STARTED = "started"  # first content (or the clean end) seen: the stream is the client's from here on
FAILED = "failed"  # an error event before any content: an upstream failure that may be retried


class Opening(NamedTuple):
    """StreamDecoder.opening's verdict; when FAILED, the upstream's error message and the HTTP status its
    error event stands for (a rate-limit event is a 429, as the same error answered before a stream would
    be), or None when it names none (a broken stream: no answer); and the error event's data, the upstream's
    error as its JSON answer would carry it (None when there is none), for ``Translation.error_body``."""

    verdict: str
    message: str | None = None
    status: int | None = None
    answer: bytes | None = None


HOLD = Opening(PENDING)
START = Opening(STARTED)


@dataclass(frozen=True, slots=True)
class Origin:
    """What a translation needs to know of the client's request that it may not make itself (pure): the id
    its answer carries (``msg_…``, ``chatcmpl-…``), the epoch second it was received, and whether its answer
    keeps to OpenAI's shapes strictly (``strict_open_ai_compliance``: the request's header, else the target's
    config, else true; not strict, a translated answer adds the upstream's own fields as Portkey does)."""

    request_id: str = "0"
    created: int = 0
    strict: bool = True


NO_ORIGIN = Origin()


@dataclass(frozen=True, slots=True)
class MeasuredUsage:
    """Token counts a translation measured on its way back (OpenAI names); ``estimated``: the upstream
    reported none and the prompt count is the gateway's estimate."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


class StreamDecoder(Protocol):
    """One response stream, from the upstream's bytes to what the client gets.

    Used by both halves of a stream: the exchange holds the start back and feeds ``opening`` until it says
    STARTED or FAILED; the relay then writes ``head()`` and every later chunk through ``relay``, and asks
    ``end_failure`` once the upstream stops. A decoder may also take how to close the upstream (``attach``,
    once started) and, before its first chunk, how to scrub the bytes of an upstream error event after the
    start of the credentials the gateway sent (``hide_echoes``): a function of bytes, never the credentials
    (exchange.py).
    """

    def opening(self, chunk: bytes) -> Opening:
        """Judge the start: PENDING, STARTED, or FAILED with the upstream's message and status."""
        ...

    def head(self) -> bytes:
        """The held-back start, as the client gets it."""
        ...

    def relay(self, chunk: bytes) -> bytes:
        """A chunk after the start, as the client gets it (b"" when it yields nothing yet)."""
        ...

    def end_failure(self) -> str | None:
        """Why the stream ended badly, or None for a clean end."""
        ...

    def error_event(self, message: str, error_type: str) -> bytes:
        """The final event that tells the client its stream broke after it started."""
        ...

    def measured_usage(self) -> MeasuredUsage | None:
        """The stream's token counts when the decoder tracked them (a translated stream), else None: the
        request log then reads them from the relayed bytes."""
        ...


class Translation(Protocol):
    """One request's way across a spec: the body upstream, the answer back, its errors and stream."""

    def request_body(self, body: Mapping[str, Any] | None, raw: bytes, *, edited: bool) -> bytes:
        """The upstream body. ``raw`` is what the client sent and ``body`` its parsed JSON (None for a
        passthrough request); ``edited``: the gateway changed ``body`` (model, override_params), so ``raw``
        no longer says what to send."""
        ...

    def response_body(self, status: int, body: bytes) -> bytes:
        """A complete successful upstream answer, as the client gets it."""
        ...

    def error_body(self, status: int, raw: bytes, provider: str) -> dict[str, Any]:
        """An upstream error answer rewritten into the unified envelope ``{"error": {...}, "provider"}``."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one response stream."""
        ...

    def local_answer(self, body: Mapping[str, Any] | None) -> bytes | None:
        """A complete answer the gateway gives itself, without an upstream request (count_tokens on a spec
        that has no such endpoint: the estimate); None to send the request."""
        ...

    def measured_usage(self) -> MeasuredUsage | None:
        """Token counts of the last ``response_body`` when the translation measured them, else None."""
        ...


class ApiSpec(Protocol):
    """An upstream API spec: where its endpoints are, how it takes a credential, how to talk to it."""

    name: str  # what the Model Catalog stores as a provider's ``spec``

    def endpoint_path(self, endpoint: str) -> str | None:
        """The path appended to the base URL for a unified endpoint; None when the spec lacks it."""
        ...

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry ``api_key`` (applied after translation)."""
        ...

    def client_headers(self, endpoint: str, incoming: Mapping[str, str], *,
                       own_credential: bool = False) -> dict[str, str]:
        """Protocol headers this spec takes from the client's request (or defaults), e.g. Anthropic's
        ``anthropic-version`` and ``anthropic-beta``, bare or as the SDKs' ``x-portkey-`` options; applied
        before the credential. ``own_credential``: the target brings its own (a catalog provider, a config
        key), so the client may not pick the account it is used under (OpenAI's organisation and project)."""
        ...

    def translation(self, endpoint: str, origin: Origin = NO_ORIGIN) -> Translation:
        """How a request to ``endpoint`` ("chat", "completions", "embeddings", "messages", "count_tokens",
        "proxy") crosses this spec: a fresh object per request when it keeps state."""
        ...
