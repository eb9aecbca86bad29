"""Inheritance (docs/gateway-config.md) and jsonpaths, applied once at compile time."""

from __future__ import annotations

import pytest

from sluicegate.config.model import BreakerPolicy, Group, RetryPolicy, Target
from tests.config.helpers import parse

BREAKER = {"failure_threshold": 3, "cooldown_interval": 30000}


def leaves(node) -> list[Target]:
    if isinstance(node, Target):
        return [node]
    return [leaf for child in node.children for leaf in leaves(child)]


def tree(parent: dict, child: dict, grandchild: dict | None = None) -> dict:
    """parent → [child → [grandchild], sibling]: enough depth to see a value flow two levels down."""
    inner = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", **(grandchild or {})}]}
    return {
        "strategy": {"mode": "fallback"},
        **parent,
        "targets": [{**inner, **child}, {"provider": "anthropic"}],
    }


@pytest.mark.parametrize(
    "parent, child, grandchild, attr, expected",
    [
        # override_params: shallow merge, the nearer node's keys win
        ({"override_params": {"model": "a", "temperature": 0}}, {"override_params": {"model": "b"}}, {},
         "override_params", [{"model": "b", "temperature": 0}, {"model": "a", "temperature": 0}]),
        ({"override_params": {"model": "a"}}, {}, {"override_params": {"max_tokens": 9}},
         "override_params", [{"model": "a", "max_tokens": 9}, {"model": "a"}]),
        ({"override_params": {"response_format": {"type": "json_object"}}},
         {"override_params": {"response_format": {"type": "text"}}}, {},
         "override_params", [{"response_format": {"type": "text"}}, {"response_format": {"type": "json_object"}}]),
        # retry: the child's object replaces the parent's entirely (no field-by-field merge)
        ({"retry": {"attempts": 3, "on_status_codes": [429]}}, {"retry": {"attempts": 1}}, {},
         "retry", [RetryPolicy(1), RetryPolicy(3, frozenset({429}))]),
        ({"retry": {"attempts": 3}}, {}, {}, "retry", [RetryPolicy(3), RetryPolicy(3)]),
        ({}, {}, {"retry": {"attempts": 2}}, "retry", [RetryPolicy(2), None]),
        # scalars and lists: nearest wins
        ({"custom_host": "http://p/v1"}, {}, {"custom_host": "http://g/v1/"}, "custom_host", ["http://g/v1", "http://p/v1"]),
        ({"custom_host": "http://p/v1"}, {"custom_host": "http://c/v1"}, {}, "custom_host", ["http://c/v1", "http://p/v1"]),
        ({"forward_headers": ["A"]}, {"forward_headers": ["B", "C"]}, {}, "forward_headers", [("b", "c"), ("a",)]),
        ({"forward_headers": ["A"]}, {}, {"forward_headers": []}, "forward_headers", [(), ("a",)]),
        ({"request_timeout": 1000}, {}, {}, "request_timeout_ms", [1000, 1000]),
        ({"request_timeout": 1000}, {"requestTimeout": 50}, {}, "request_timeout_ms", [50, 1000]),
        ({"strict_open_ai_compliance": False}, {}, {}, "strict_open_ai_compliance", [False, False]),
        ({"strict_open_ai_compliance": False}, {}, {"strict_open_ai_compliance": True}, "strict_open_ai_compliance", [True, False]),
        ({}, {}, {}, "strict_open_ai_compliance", [None, None]),
        ({"cb_config": BREAKER}, {}, {}, "breaker", [BreakerPolicy(3, 30000), BreakerPolicy(3, 30000)]),
        ({}, {"strategy": {"mode": "fallback", "cb_config": BREAKER}}, {}, "breaker", [BreakerPolicy(3, 30000), None]),
        ({"cb_config": BREAKER}, {"cb_config": {"failure_threshold": 1, "cooldown_interval": 1000}}, {},
         "breaker", [BreakerPolicy(1, 1000), BreakerPolicy(3, 30000)]),
    ],
)  # fmt: skip
def test_inherited_settings(parent, child, grandchild, attr, expected):
    node = parse(tree(parent, child, grandchild))
    assert [getattr(leaf, attr) for leaf in leaves(node)] == expected


def test_name_weight_provider_and_api_key_are_not_inherited():
    config = {
        "strategy": {"mode": "loadbalance"},
        "name": "root",
        "weight": 5,
        "targets": [
            {"name": "lb", "weight": 2, "strategy": {"mode": "single"}, "targets": [{"api_key": "k"}]},
            {"provider": "openai"},
        ],
    }
    node = parse(config)
    grandchild, sibling = leaves(node)
    assert (grandchild.name, grandchild.weight, grandchild.provider, grandchild.api_key) == (None, 1.0, None, "k")
    assert (sibling.api_key, sibling.weight) == (None, 1.0)
    assert (node.name, node.weight, node.children[0].name, node.children[0].weight) == ("root", 5.0, "lb", 2.0)


def test_paths_follow_the_reference_jsonpath_format():
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {
                "strategy": {"mode": "loadbalance"},
                "targets": [{"provider": "openai"}, {"provider": "openai"}, {"provider": "anthropic"}],
            },
            {"provider": "anthropic"},
        ],
    }
    node = parse(config)
    assert isinstance(node, Group) and node.json_path == "config"
    assert node.children[0].json_path == "config.targets[0]"
    assert [leaf.json_path for leaf in leaves(node)] == [
        "config.targets[0].targets[0]",
        "config.targets[0].targets[1]",
        "config.targets[0].targets[2]",
        "config.targets[1]",
    ]


def test_a_config_without_targets_is_one_leaf_at_config():
    assert parse({"provider": "openai", "api_key": "k"}) == Target(json_path="config", provider="openai", api_key="k")


def test_override_params_are_read_only_and_siblings_do_not_share_a_dict():
    node = parse(tree({"override_params": {"model": "a"}}, {"override_params": {"n": 1}}))
    first, second = leaves(node)
    with pytest.raises(TypeError):
        first.override_params["model"] = "x"  # type: ignore[index]
    assert second.override_params == {"model": "a"}
