"""Helpers for config tests: parse a dict (or raw text) against a fixed provider list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluicegate.config import parse_config
from sluicegate.errors import ConfigError, InvalidCustomHost

PROVIDERS = frozenset({"openai", "anthropic", "azure-openai"})


def fake_check_host(url: str) -> None:
    """Stands in for the SSRF guard: anything mentioning 'blocked' or 169.254 is refused."""
    if "169.254" in url:
        raise InvalidCustomHost("link-local and metadata addresses are not allowed")
    if "blocked" in url:
        raise InvalidCustomHost("blocked host")


def parse(config: Any, **kwargs: Any):
    text = config if isinstance(config, (str, bytes)) else json.dumps(config)
    kwargs.setdefault("check_host", fake_check_host)
    return parse_config(text, known_providers=PROVIDERS, **kwargs)


def errors_of(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(config)
    assert info.value.status == 400
    assert info.value.body()["message"] == "Invalid config passed"
    return info.value.errors
