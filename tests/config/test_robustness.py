"""Whatever JSON arrives, parsing ends in a compiled tree or a 400, never in another exception."""

from __future__ import annotations

import json
import random

import pytest

from sluicegate.errors import BadRequest
from tests.config.helpers import parse
from tests.mutations import paths, replaced

BASE = {
    "retry": {"attempts": 2, "on_status_codes": [429], "use_retry_after_headers": True},
    "strategy": {
        "mode": "conditional",
        "conditions": [{"query": {"$or": [{"metadata.a": {"$in": ["x"]}}, {"params.b": 1}]}, "then": "one"}],
        "default": "two",
        "cb_config": {"failure_threshold": 2, "cooldown_interval": 1000},
    },
    "targets": [
        {"name": "one", "provider": "openai", "forward_headers": ["a"], "override_params": {"m": 1}},
        {
            "name": "two",
            "strategy": {"mode": "loadbalance"},
            "targets": [{"virtual_key": "vk", "weight": 2}, {"provider": "@slug", "custom_host": "http://h/"}],
        },
    ],
}
ODD_VALUES = [None, True, 0, -1, 1.5, 10**6, "", "x", "$eq", [], [1], [{}], {}, {"$bad": 1}, {"mode": "single"}]


ALL_PATHS = list(paths(BASE))


def test_the_base_config_is_valid():
    parse(BASE)


@pytest.mark.parametrize("seed", range(40))
def test_replacing_any_value_gives_a_tree_or_a_400(seed):
    rng = random.Random(seed)
    config = BASE
    for _ in range(rng.randint(1, 3)):
        config = replaced(config, rng.choice(list(paths(config))), rng.choice(ODD_VALUES))
    try:
        parse(json.dumps(config))
    except BadRequest:
        pass


def test_every_single_replacement_gives_a_tree_or_a_400():
    crashes = []
    for path in ALL_PATHS[1:]:
        for new in ODD_VALUES:
            try:
                parse(replaced(BASE, path, new))
            except BadRequest:
                pass
            except Exception as exc:
                crashes.append((path, new, repr(exc)))
    assert crashes == []
