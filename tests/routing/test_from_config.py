"""Routing decisions driven by configs as the gateway will compile them."""

from __future__ import annotations

import json

import pytest

from sluicegate.config import parse_config
from sluicegate.routing import choose_conditional, pick_weighted, retry_delay, should_fallback

PROVIDERS = {"openai", "anthropic"}


def compile_(config: dict):
    return parse_config(json.dumps(config), known_providers=PROVIDERS)


def test_conditional_config_routes_by_metadata_and_reports_the_child_path():
    node = compile_(
        {
            "strategy": {
                "mode": "conditional",
                "conditions": [
                    {"query": {"metadata.user_plan": {"$eq": "paid"}}, "then": "smart"},
                    {"query": {"params.model": {"$regex": "^claude"}}, "then": "claude"},
                ],
                "default": "cheap",
            },
            "targets": [
                {"name": "cheap", "provider": "openai", "override_params": {"model": "gpt-4o-mini"}},
                {"name": "smart", "provider": "openai", "override_params": {"model": "gpt-4o"}},
                {"name": "claude", "provider": "anthropic"},
            ],
        }
    )
    names = [child.name for child in node.children]

    def route(metadata, params):
        index = choose_conditional(node.strategy, names, metadata=metadata, params=params, pathname="/v1/chat/completions")
        return node.children[index].json_path

    assert route({"user_plan": "paid"}, {"model": "claude-3"}) == "config.targets[1]"
    assert route({"user_plan": "free"}, {"model": "claude-3"}) == "config.targets[2]"
    assert route({}, {}) == "config.targets[0]"


def test_loadbalance_config_weights_feed_pick_weighted():
    node = compile_(
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [{"provider": "openai", "weight": 0.75}, {"provider": "anthropic", "weight": 0.25}],
        }
    )
    weights = [child.weight for child in node.children]
    assert [pick_weighted(weights, r) for r in (0.0, 0.74, 0.75, 0.99)] == [0, 0, 1, 1]


def test_fallback_with_inherited_retry():
    node = compile_(
        {
            "retry": {"attempts": 2, "on_status_codes": [429]},
            "strategy": {"mode": "fallback", "on_status_codes": [429, 503]},
            "targets": [{"provider": "openai"}, {"provider": "anthropic", "retry": {"attempts": 0}}],
        }
    )
    first, second = node.children
    assert retry_delay(first.retry, 0, 429, {}, 0.0) == 1.0
    assert retry_delay(first.retry, 2, 429, {}, 3.0) is None
    assert retry_delay(second.retry, 0, 429, {}, 0.0) is None
    assert should_fallback(node.strategy, 503) and not should_fallback(node.strategy, 500)


# Each of these backtracks exponentially in a backtracking engine on its subject: with Python's re, 40 characters
# took hours on the event loop. The guard turns that old hang into a failure; the linear-time engine needs
# milliseconds. None matches: the "!" ends each run.
@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "pattern, subject",
    [("^(a|a)*$", "a" * 40 + "!"), ("^(a|aa)*$", "a" * 40 + "!"), ("^(\\w|\\d)+$", "1" * 40 + "!"),
     ("(a+)+$", "a" * 40 + "!"), ("^(a|a?)+$", "a" * 40 + "!"), ("^(\\w+\\s?)*$", "a" * 40 + "!")],
)  # fmt: skip
def test_a_regex_that_backtracks_exponentially_is_accepted_and_answers_at_once(pattern, subject):
    node = compile_(
        {
            "strategy": {
                "mode": "conditional",
                "conditions": [{"query": {"params.prompt": {"$regex": pattern}}, "then": "x"}],
                "default": "y",
            },
            "targets": [{"name": "x", "provider": "openai"}, {"name": "y", "provider": "openai"}],
        }
    )
    chosen = choose_conditional(node.strategy, ["x", "y"], metadata={}, params={"prompt": subject}, pathname="/")
    assert chosen == 1
    # and the same pattern matches where it should
    assert choose_conditional(node.strategy, ["x", "y"], metadata={}, params={"prompt": subject[:-1]}, pathname="/") == 0
