"""Cost from the price table: operator entries first, built-in list prices for public providers only."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.telemetry.pricing import FREE, Price, PriceTable, PricingError


def test_private_models_cost_nothing_unless_priced():
    table = PriceTable()
    assert table.price("openai", "gpt-4o", None, public=False) == FREE  # a self-hosted model with a famous name
    assert table.price("openai", "gpt-4o", None, public=True) == Price(2.50, 10.00)
    assert table.price("openai", "llama-3", None, public=True) == FREE


def test_operator_table_lookup_order():
    table = PriceTable.from_mapping({
        "default": {"prompt": 0.1, "completion": 0.2},
        "models": {
            "llama-3": {"prompt": 1, "completion": 2},
            "vllm/llama-3": {"prompt": 3, "completion": 4},
            "gpt-4o-2024*": {"prompt": 5},
            "gpt-4o*": {"prompt": 6},
        },
    })
    assert table.price("vllm", "llama-3", None, public=False) == Price(3, 4)  # provider/model first
    assert table.price("openai", "llama-3", None, public=False) == Price(1, 2)
    assert table.price("openai", "gpt-4o", "gpt-4o-2024-08-06", public=True) == Price(5, 0)  # longest prefix
    assert table.price("openai", "gpt-4o-mini", None, public=True) == Price(6, 0)
    assert table.price("openai", "mistral", None, public=False) == Price(0.1, 0.2)  # the operator's default
    assert table.price("openai", "gpt-4.1", None, public=True) == Price(2.0, 8.0)  # built-in still applies


def test_cost_is_per_million_tokens():
    assert Price(2.5, 10).cost(1_000_000, 500_000) == pytest.approx(7.5)


def test_load_from_file(tmp_path):
    path = tmp_path / "prices.json"
    path.write_bytes(orjson.dumps({"models": {"my-model": {"prompt": 1, "completion": 1}}}))
    assert PriceTable.load(path).price("openai", "my-model", None, public=False) == Price(1, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected an object"),
        ({"modles": {}}, "expected an object"),
        ({"models": []}, "'models' must be an object"),
        ({"models": {"m": {"prompt": -1}}}, "models.m.prompt"),
        ({"models": {"m": {"prompt": "1"}}}, "models.m.prompt"),
        ({"models": {"m": {"input": 1}}}, "models.m"),
        ({"default": {"completion": True}}, "default.completion"),
    ],
)
def test_bad_tables_name_the_entry(data, message):
    with pytest.raises(PricingError, match=message.replace(".", r"\.")):
        PriceTable.from_mapping(data)


def test_unreadable_file(tmp_path):
    with pytest.raises(PricingError, match="pricing file"):
        PriceTable.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PricingError, match="pricing file"):
        PriceTable.load(tmp_path / "bad.json")
