"""The OpenAI API spec (OpenAI itself, vLLM, llama.cpp, TGI, Ollama's /v1, LM Studio, private proxies …).

Pure functions only. Requests and successful responses pass through untouched: unknown parameters
(vLLM's ``top_k``, ``chat_template_kwargs`` …) must reach the model and unknown response fields must reach
the client, which is exactly where Portkey's open-source gateway falls short (it whitelists parameters).
"""

from __future__ import annotations

from typing import Any

import orjson

SPEC = "openai"

ENDPOINT_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}

_ERROR_TEXT_LIMIT = 2000


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


def stream_error_event(message: str, error_type: str) -> bytes:
    """The SSE event that tells an OpenAI client its stream broke (the OpenAI SDKs raise on it)."""
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"
