"""Per-model prices of a catalog provider (pure): ``{model: {"input": x, "output": y, "per": 1000}}``.

``per`` is 1000 or 1000000 tokens (default 1000); ``"*"`` prices every other model of the provider. A
model without a price has no cost: a cost budget then refuses it (budget it in tokens instead).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .model import LimitError

PER = (1000, 1_000_000)
MODEL_MAX = 256  # as long as the request log's model column: a longer name never names a logged model


def parse_prices(raw: object) -> dict[str, tuple[float, float]]:
    """→ {model: (input price per token, output price per token)}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LimitError("'prices' must be an object {model: {input, output, per}}")
    prices = {}
    for model, price in raw.items():
        if not 0 < len(model) <= MODEL_MAX or not model.isprintable():  # JSON keys are strings
            raise LimitError(f"'prices' keys must be model names of 1 to {MODEL_MAX} printable characters "
                             "(or \"*\" for every other model)")
        where = f"prices.{model}"
        if not isinstance(price, dict):
            raise LimitError(f"'{where}' must be an object {{input, output, per}}")
        per = price.get("per", 1000)
        if per not in PER:
            raise LimitError(f"'{where}.per' must be 1000 or 1000000 (tokens)")
        values = []
        for side in ("input", "output"):
            value = price.get(side)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise LimitError(f"'{where}.{side}' must be a number ≥ 0 (price per {per} tokens)")
            values.append(value / per)
        prices[str(model)] = (values[0], values[1])
    return prices


def price_of(prices: Mapping[str, tuple[float, float]], model: str | None) -> tuple[float, float] | None:
    if model is not None and model in prices:
        return prices[model]
    return prices.get("*")


def prices_json(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored shape: what the operator sent, validated."""
    if raw is None:
        return None
    parse_prices(raw)
    return raw
