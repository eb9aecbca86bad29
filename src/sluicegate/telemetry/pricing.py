"""Cost of a request from a price table: per model, in USD per million tokens (the providers' own unit).

Lookup order: the operator's table (``pricing_file``) by ``provider/model`` then ``model``, first for the
model that answered then for the model asked, then its wildcard entries (``"gpt-4o-2024*"``, longest first);
then, for commercial providers reached at their public URL only, the built-in table; then the operator's
``default`` (zero unless set). A private model (any request with a custom host) therefore costs zero unless
the operator prices it: a self-hosted model served under a famous name must not be billed at list price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

PER_MILLION = 1_000_000
_CACHE_LIMIT = 4096  # distinct model names resolved; clients choose names, so the memo must be bounded


@dataclass(frozen=True, slots=True)
class Price:
    prompt: float  # USD per million prompt tokens
    completion: float  # USD per million completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / PER_MILLION


FREE = Price(0.0, 0.0)

# List prices of a few widely used OpenAI models (USD per 1M tokens, standard tier, as published in 2025).
# The operator's table overrides any of these.
BUILTIN: Mapping[str, Price] = MappingProxyType(
    {
        "openai/gpt-4o": Price(2.50, 10.00),
        "openai/gpt-4o-mini": Price(0.15, 0.60),
        "openai/gpt-4.1": Price(2.00, 8.00),
        "openai/gpt-4.1-mini": Price(0.40, 1.60),
        "openai/gpt-4.1-nano": Price(0.10, 0.40),
        "openai/o3-mini": Price(1.10, 4.40),
        "openai/text-embedding-3-small": Price(0.02, 0.0),
        "openai/text-embedding-3-large": Price(0.13, 0.0),
    }
)


class PricingError(ValueError):
    """The price file cannot be used; the message names the offending entry."""


class PriceTable:
    def __init__(self, models: Mapping[str, Price] | None = None, default: Price = FREE,
                 builtin: Mapping[str, Price] = BUILTIN) -> None:
        models = dict(models or {})
        self._exact = {k: v for k, v in models.items() if not k.endswith("*")}
        # Longest prefix first, so "gpt-4o-mini*" wins over "gpt-4o*".
        self._prefixes = sorted(((k[:-1], v) for k, v in models.items() if k.endswith("*")),
                                key=lambda kv: -len(kv[0]))
        self._builtin = builtin
        self._default = default
        self._memo: dict[tuple[str | None, str | None, str | None, bool], Price] = {}

    @classmethod
    def load(cls, path: Path | None) -> PriceTable:
        if path is None:
            return cls()
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise PricingError(f"pricing file {path}: {exc}") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "pricing") -> PriceTable:
        if not isinstance(data, dict) or set(data) - {"models", "default"}:
            raise PricingError(f"{source}: expected an object with 'models' and/or 'default'")
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise PricingError(f"{source}: 'models' must be an object")
        parsed = {name: _price(entry, f"{source}: models.{name}") for name, entry in models.items()}
        default = _price(data["default"], f"{source}: default") if "default" in data else FREE
        return cls(parsed, default)

    def price(self, provider: str | None, asked: str | None, answered: str | None, public: bool) -> Price:
        key = (provider, asked, answered, public)
        found = self._memo.get(key)
        if found is None:
            found = self._resolve(provider, asked, answered, public)
            if len(self._memo) >= _CACHE_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _resolve(self, provider: str | None, asked: str | None, answered: str | None, public: bool) -> Price:
        models = [m for m in (answered, asked) if m]
        for model in models:
            for name in (f"{provider}/{model}", model):
                if name in self._exact:
                    return self._exact[name]
        for model in models:
            for prefix, price in self._prefixes:
                if model.startswith(prefix) or f"{provider}/{model}".startswith(prefix):
                    return price
        if public:
            for model in models:
                if f"{provider}/{model}" in self._builtin:
                    return self._builtin[f"{provider}/{model}"]
        return self._default


def _price(entry: Any, where: str) -> Price:
    if not isinstance(entry, dict) or set(entry) - {"prompt", "completion"}:
        raise PricingError(f"{where}: expected {{\"prompt\": USD per 1M tokens, \"completion\": …}}")
    values = []
    for field in ("prompt", "completion"):
        value = entry.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PricingError(f"{where}.{field}: a non-negative number (USD per million tokens)")
        values.append(float(value))
    return Price(*values)
