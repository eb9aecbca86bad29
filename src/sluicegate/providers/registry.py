"""Which provider ids the gateway accepts, the API spec each speaks and where it lives by default.

This is the one list of API specs and provider ids: adding a spec is one module (``providers/<spec>.py``
with an object satisfying ``contract.ApiSpec``) plus its line in ``SPECS`` below; the Model Catalog
(``catalog/entries.py``) and the config schema read their choices from here.

A provider id (what clients put in ``x-portkey-provider`` or a config's ``provider``) names an API spec
and a default base URL. Private LLMs use the spec they implement (``openai``, or ``anthropic`` for a
server that speaks /v1/messages) with a custom host.
Operators behind an egress proxy, and tests, move a default base URL with
``SLUICEGATE_PROVIDER_URL_<ID>`` (see settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from . import anthropic, openai
from .contract import ApiSpec

# API specs by the name the Model Catalog stores (a catalog provider names its spec, not a provider id).
SPECS: Mapping[str, ApiSpec] = MappingProxyType({spec.name: spec for spec in (openai.SPEC, anthropic.SPEC)})
SPEC_NAMES: tuple[str, ...] = tuple(SPECS)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: str
    spec: ApiSpec
    default_base_url: str | None
    path_prefix: str = ""  # inserted between the base URL and the endpoint path (Ollama: "/v1")


def _openai_compatible(id_: str, base_url: str | None, path_prefix: str = "") -> ProviderInfo:
    return ProviderInfo(id_, openai.SPEC, base_url, path_prefix)


PROVIDERS: Mapping[str, ProviderInfo] = MappingProxyType(
    {
        info.id: info
        for info in (
            _openai_compatible("openai", "https://api.openai.com/v1"),
            _openai_compatible("groq", "https://api.groq.com/openai/v1"),
            _openai_compatible("together-ai", "https://api.together.xyz/v1"),
            _openai_compatible("mistral-ai", "https://api.mistral.ai/v1"),
            _openai_compatible("deepseek", "https://api.deepseek.com/v1"),
            _openai_compatible("fireworks-ai", "https://api.fireworks.ai/inference/v1"),
            _openai_compatible("openrouter", "https://openrouter.ai/api/v1"),
            _openai_compatible("perplexity-ai", "https://api.perplexity.ai"),
            _openai_compatible("x-ai", "https://api.x.ai/v1"),
            _openai_compatible("deepinfra", "https://api.deepinfra.com/v1/openai"),
            _openai_compatible("cerebras", "https://api.cerebras.ai/v1"),
            # Ollama's custom host is given without /v1 (Portkey's convention); its OpenAI API is under /v1.
            _openai_compatible("ollama", "http://localhost:11434", path_prefix="/v1"),
            ProviderInfo("anthropic", anthropic.SPEC, "https://api.anthropic.com/v1"),
        )
    }
)


def lookup(provider_id: str) -> ProviderInfo | None:
    return PROVIDERS.get(provider_id)


def base_url(info: ProviderInfo, overrides: Mapping[str, str]) -> str | None:
    """The default base URL for a provider, after the operator's overrides."""
    return overrides.get(info.id, info.default_base_url)
