"""``strategy.policy``: how a loadbalance group picks ("weighted", the default, or "least-busy")."""

from __future__ import annotations

import pytest

from tests.config.helpers import errors_of, parse

LEAF = {"provider": "openai", "api_key": "sk-1"}
POLICY_MSG = "Invalid 'policy' value. Must be one of: weighted, least-busy"


def balanced(**strategy) -> dict:
    return {"strategy": {"mode": "loadbalance", **strategy}, "targets": [LEAF, LEAF]}


@pytest.mark.parametrize(("strategy", "expected"), [
    ({}, "weighted"),
    ({"policy": "weighted"}, "weighted"),
    ({"policy": "least-busy"}, "least-busy"),
])
def test_policy_is_compiled_with_weighted_as_the_default(strategy, expected):
    assert parse(balanced(**strategy)).strategy.policy == expected


@pytest.mark.parametrize(("config", "error"), [
    (balanced(policy="least_busy"), f"path: strategy,policy, message: {POLICY_MSG}"),
    (balanced(policy="LEAST-BUSY"), f"path: strategy,policy, message: {POLICY_MSG}"),
    (balanced(policy=""), f"path: strategy,policy, message: {POLICY_MSG}"),
    (balanced(policy=None), f"path: strategy,policy, message: {POLICY_MSG}"),
    (balanced(policy=1), f"path: strategy,policy, message: {POLICY_MSG}"),
    (balanced(policy=["least-busy"]), f"path: strategy,policy, message: {POLICY_MSG}"),
    ({"strategy": {"mode": "fallback", "policy": "least-busy"}, "targets": [LEAF, LEAF]},
     "path: strategy,policy, message: 'policy' is only used with mode 'loadbalance'"),
    ({"strategy": {"mode": "single", "policy": "weighted"}, "targets": [LEAF]},
     "path: strategy,policy, message: 'policy' is only used with mode 'loadbalance'"),
    ({"targets": [{"strategy": {"mode": "loadbalance", "policy": "fastest"}, "targets": [LEAF]}],
      "strategy": {"mode": "fallback"}},
     f"path: targets,0,strategy,policy, message: {POLICY_MSG}"),
])
def test_malformed_policy_names_its_json_path(config, error):
    assert errors_of(config) == [error]


def test_policy_inside_nested_group_is_kept():
    config = {"strategy": {"mode": "fallback"},
              "targets": [balanced(policy="least-busy"), LEAF]}
    assert parse(config).children[0].strategy.policy == "least-busy"
