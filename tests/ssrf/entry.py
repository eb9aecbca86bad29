"""The gateway's entry points for a custom host, and what a refusal looks like at each.

A custom host reaches the gateway in the ``x-portkey-custom-host`` header, or in a Gateway Config as
``custom_host`` / ``customHost`` on any node (a leaf, a nested leaf, or a group that its targets
inherit from), on the unified routes (``/v1/chat/completions``) and on the passthrough routes
(``POST /v1/rerank``, ``GET /v1/models``). Each builder turns a URL into a request spec for
``scenario.py``; ``config_path`` is where a config refusal names the offending key (Portkey's wire
form: ``{"message": "Invalid config passed", "errors": ["path: <path>, message: Invalid custom host: …"]}``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
RERANK = {"model": "m", "query": "q", "documents": ["a", "b"]}


@dataclass(frozen=True)
class EntryPoint:
    name: str
    method: str
    path: str
    config: Callable[[str], dict] | None = None  # None: the URL rides in the header
    config_path: str | None = None

    def request(self, url: str) -> dict[str, Any]:
        headers = {"x-portkey-provider": "openai", "authorization": "Bearer sk-test"}
        if self.config is None:
            headers["x-portkey-custom-host"] = url
        else:
            # json.dumps escapes non-ASCII and control characters, so any URL survives as a header value.
            headers = {"x-portkey-config": json.dumps(self.config(url))}
        body = None
        if self.method == "POST":
            body = json.dumps(RERANK if self.path.endswith("/rerank") else CHAT)
            headers["content-type"] = "application/json"
        return {"method": self.method, "path": self.path, "headers": headers, "body": body}


def _leaf(url: str, key: str = "custom_host") -> dict:
    return {"provider": "openai", "api_key": "sk-test", key: url}


def _nested_camel(url: str) -> dict:
    return {"strategy": {"mode": "fallback"}, "targets": [_leaf(url, "customHost")]}


def _deep(url: str) -> dict:
    # The URL's target first: the fallback behind it (the provider default, a loopback black hole that
    # a 0.0.0.0 gateway itself refuses) is only there to make the tree deep.
    inner = {"strategy": {"mode": "fallback"},
             "targets": [_leaf(url, "customHost"), {"provider": "openai", "api_key": "sk-test"}]}
    return {"strategy": {"mode": "loadbalance"}, "targets": [inner]}


def _inherited(url: str) -> dict:
    return {"strategy": {"mode": "fallback"}, "custom_host": url,
            "targets": [{"provider": "openai", "api_key": "sk-test"}]}


HEADER_CHAT = EntryPoint("header-chat", "POST", "/v1/chat/completions")
HEADER_RERANK = EntryPoint("header-rerank", "POST", "/v1/rerank")
HEADER_MODELS = EntryPoint("header-models", "GET", "/v1/models")
CONFIG_SNAKE = EntryPoint("config-snake", "POST", "/v1/chat/completions", _leaf, "custom_host")
CONFIG_CAMEL_NESTED = EntryPoint("config-camel-nested", "POST", "/v1/chat/completions", _nested_camel,
                                 "targets,0,customHost")
CONFIG_DEEP = EntryPoint("config-deep", "POST", "/v1/chat/completions", _deep,
                         "targets,0,targets,0,customHost")
CONFIG_INHERITED = EntryPoint("config-inherited", "POST", "/v1/chat/completions", _inherited,
                              "custom_host")
CONFIG_RERANK = EntryPoint("config-rerank", "POST", "/v1/rerank", lambda url: _leaf(url, "customHost"),
                           "customHost")
# Not the very text of CONFIG_SNAKE: the config cache would answer a repeat without asking the guard.
CONFIG_MODELS = EntryPoint("config-models", "GET", "/v1/models",
                           lambda url: {**_leaf(url), "request_timeout": 30000}, "custom_host")

ALL = (HEADER_CHAT, HEADER_RERANK, HEADER_MODELS, CONFIG_SNAKE, CONFIG_CAMEL_NESTED, CONFIG_DEEP,
       CONFIG_INHERITED, CONFIG_RERANK, CONFIG_MODELS)
HEADERS = tuple(entry for entry in ALL if entry.config is None)
CONFIGS = tuple(entry for entry in ALL if entry.config is not None)


@dataclass(frozen=True)
class CatalogEntry(EntryPoint):
    """A catalog provider, called as ``@slug``: the URL is the provider's stored custom host, so it is
    not in the request at all."""

    slug: str = ""

    def request(self, url: str) -> dict[str, Any]:
        headers = {"x-portkey-provider": f"@{self.slug}", "content-type": "application/json"}
        return {"method": "POST", "path": self.path, "headers": headers, "body": json.dumps(CHAT)}


def catalog(slug: str) -> CatalogEntry:
    return CatalogEntry(f"catalog-{slug}", "POST", "/v1/chat/completions", slug=slug)

