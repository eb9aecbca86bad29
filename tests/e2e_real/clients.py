"""Clients pointed at the gateway with the direct integration headers (provider + custom host)."""

from __future__ import annotations

import openai
from portkey_ai import AsyncPortkey, Portkey

MODEL = "smollm2"
SHORT = 16  # max_tokens for most calls: behaviour, not prose, is under test (~0.15 s each)


def direct_headers(upstream_v1: str) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream_v1}


def portkey(gateway, upstream_v1: str, **kwargs) -> Portkey:
    return Portkey(base_url=gateway.v1, provider="openai", custom_host=upstream_v1, **kwargs)


def async_portkey(gateway, upstream_v1: str, **kwargs) -> AsyncPortkey:
    return AsyncPortkey(base_url=gateway.v1, provider="openai", custom_host=upstream_v1, **kwargs)


def openai_client(gateway, upstream_v1: str) -> openai.OpenAI:
    # max_retries=0: a failure must show as itself, not be hidden by the SDK's own retries.
    return openai.OpenAI(api_key="no-key-needed", base_url=gateway.v1, max_retries=0,
                         default_headers=direct_headers(upstream_v1))


def async_openai_client(gateway, upstream_v1: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="no-key-needed", base_url=gateway.v1, max_retries=0,
                              default_headers=direct_headers(upstream_v1))


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
