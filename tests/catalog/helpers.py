"""Builders shared by the catalog, vault and admin tests."""

from __future__ import annotations

from typing import Any

from sluicegate.catalog import ProviderInput, provider_input

SECRET = "Bearer sk-live-PLAINTEXT-7f3a9c2e1b"
API_KEY = "xk-PLAINTEXT-second-secret-value"
HOST = "https://llm.example.com/v1"


def new_provider(slug: str = "my-llm", **raw: Any) -> ProviderInput:
    headers = raw.pop("headers", [("Authorization", SECRET), ("x-api-key", API_KEY)])
    fields = {"spec": "openai", "custom_host": HOST, **raw}
    return provider_input(slug, fields, headers, None)
