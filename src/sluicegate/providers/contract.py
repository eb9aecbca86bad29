"""The provider contract: what an API spec module gives the gateway, written down as Protocols.

A spec (``openai.py`` today, ``anthropic.py`` next) is one module exposing one object that satisfies
``ApiSpec``, plus one line in ``registry.py``. Nothing else in the gateway knows a spec by name.

The gateway speaks the OpenAI wire format to its clients. For each prepared request (one target of one
client request), ``ApiSpec.translation(endpoint)`` returns a ``Translation``: the request body on its way
to the upstream (client → upstream), the answer on its way back (upstream → client), the error envelopes,
and a fresh ``StreamDecoder`` per response stream. Being per request, a translation may remember what it
sent (the model asked for, the tools offered) to translate the answer back; a stateless one may be shared.
A spec that speaks what the client speaks (OpenAI-compatible servers) forwards the bytes untouched; one that
does not (Anthropic) translates in both directions. Credentials are applied by the caller after the body
is translated (``prepare.py``), so a translation never sees them.

Everything here is pure: no network, clock or randomness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# What StreamDecoder.opening says about the stream so far.
PENDING = "pending"  # no content yet: keep holding the start back
STARTED = "started"  # first content (or the clean end) seen: the stream is the client's from here on
FAILED = "failed"  # an error event before any content: an upstream failure that may be retried


class StreamDecoder(Protocol):
    """One response stream, from the upstream's bytes to what the client gets.

    Used by both halves of a stream: the exchange holds the start back and feeds ``opening`` until it says
    STARTED or FAILED; the relay then writes ``head()`` and every later chunk through ``relay``, and asks
    ``end_failure`` once the upstream stops.
    """

    def opening(self, chunk: bytes) -> tuple[str, str | None]:
        """Judge the start: (PENDING | STARTED | FAILED, the upstream's error message when FAILED)."""
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


class ApiSpec(Protocol):
    """An upstream API spec: where its endpoints are, how it takes a credential, how to talk to it."""

    name: str  # what the Model Catalog stores as a provider's ``spec``

    def endpoint_path(self, endpoint: str) -> str | None:
        """The path appended to the base URL for a unified endpoint; None when the spec lacks it."""
        ...

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry ``api_key`` (applied after translation)."""
        ...

    def translation(self, endpoint: str) -> Translation:
        """How a request to ``endpoint`` ("chat", "completions", "embeddings", "proxy") crosses this spec."""
        ...
