"""Valid configs: the seed's and the docs' examples verbatim, hosted ``anyOf`` shapes, aliases."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from sluicegate.config.conditions import Regex
from sluicegate.config.model import (
    DEFAULT_RETRY_STATUS_CODES,
    BreakerPolicy,
    CachePolicy,
    Group,
    RetryPolicy,
    Strategy,
    Target,
)
from sluicegate.errors import BadRequest
from tests.config.helpers import parse

# The product page ("Bring Your Own LLM"), "Using Private LLMs with Gateway Configs", verbatim.
SEED_PRIVATE_LLM_FALLBACK = """{
    "strategy": {
        "mode": "fallback"
    },
    "targets": [
        {
            "provider": "openai",
            "custom_host": "http://PRIVATE_LLM/v1",
            "forward_headers": ["Authorization"]
        },
        {
            "provider":"@openai-key"
        }
    ]
}"""

# The same seed, "Using Forward Headers in Gateway Configs", verbatim: the docs put a JavaScript comment in it.
SEED_FORWARD_HEADERS_FALLBACK = """{
  "strategy": { "mode": "fallback" },
  "targets": [
    {
      "provider": "openai",
      "custom_host": "https://your-private-llm.com/v1",
      "forward_headers": ["Authorization", "x-api-key", "x-custom-token"]
    },
    {
      "provider": "openai",
      "api_key": "sk-xxxxx"  // Fallback to commercial provider
    }
  ]
}"""

# docs product/ai-gateway/circuit-breaker, verbatim.
DOCS_CIRCUIT_BREAKER = """{
  "strategy": {
    "mode": "fallback",
    "cb_config": {
      "failure_threshold_percentage": 20,
      "minimum_requests": 10,
      "cooldown_interval": 60000,
      "failure_status_codes": [401, 429, 500]
    }
  },
  "targets": [
    { "override_params": { "model": "@openai-prod/gpt-4o" } },
    { "override_params": { "model": "@anthropic-prod/claude-3-5-sonnet-20241022" } }
  ]
}"""

# docs api-reference/config-object "Load Balancing and Fallback Combination" (virtual keys made real slugs).
DOCS_LOADBALANCE_FALLBACK = """{
  "strategy": {"mode": "loadbalance"},
  "targets": [
    {"provider": "openai", "api_key": "sk-***"},
    {
      "strategy": {"mode": "fallback", "on_status_codes": [429, 241]},
      "targets": [{"virtual_key": "vk-one"}, {"virtual_key": "vk-two"}]
    }
  ]
}"""


def test_seed_private_llm_fallback_compiles():
    node = parse(SEED_PRIVATE_LLM_FALLBACK)
    assert node == Group(
        json_path="config",
        strategy=Strategy(mode="fallback"),
        children=(
            Target(
                json_path="config.targets[0]",
                provider="openai",
                custom_host="http://PRIVATE_LLM/v1",
                forward_headers=("authorization",),
            ),
            Target(json_path="config.targets[1]", provider="@openai-key"),
        ),
    )


def test_seed_forward_headers_example_is_not_json_because_of_its_comment():
    # The docs example carries "// Fallback to commercial provider"; like Portkey we accept JSON only.
    with pytest.raises(BadRequest, match="You need to pass a valid json"):
        parse(SEED_FORWARD_HEADERS_FALLBACK)


def test_seed_forward_headers_example_without_the_comment_compiles():
    node = parse(SEED_FORWARD_HEADERS_FALLBACK.replace("  // Fallback to commercial provider", ""))
    first, second = node.children
    assert first.forward_headers == ("authorization", "x-api-key", "x-custom-token")
    assert first.custom_host == "https://your-private-llm.com/v1"
    assert (second.provider, second.api_key) == ("openai", "sk-xxxxx")


def test_docs_circuit_breaker_example_compiles_and_children_inherit_the_breaker():
    node = parse(DOCS_CIRCUIT_BREAKER)
    policy = BreakerPolicy(
        failure_threshold=None,
        cooldown_ms=60000,
        failure_status_codes=frozenset({401, 429, 500}),
        failure_threshold_percentage=20,
        minimum_requests=10,
    )
    assert [child.breaker for child in node.children] == [policy, policy]
    assert [child.provider for child in node.children] == [None, None]  # the @slug rides in the model
    assert node.children[0].override_params == {"model": "@openai-prod/gpt-4o"}


def test_docs_loadbalance_fallback_combination_compiles():
    node = parse(DOCS_LOADBALANCE_FALLBACK)
    inner = node.children[1]
    assert inner.strategy == Strategy(mode="fallback", on_status_codes=frozenset({429, 241}))
    assert [t.provider for t in inner.children] == ["@vk-one", "@vk-two"]
    assert [t.json_path for t in inner.children] == ["config.targets[1].targets[0]", "config.targets[1].targets[1]"]


# Shapes the hosted schema's anyOf accepts (OSS would reject several of them).
@pytest.mark.parametrize(
    "config, expected",
    [
        ({"provider": "openai", "custom_host": "https://your-llm-server.com/v1/"},
         Target(json_path="config", provider="openai", custom_host="https://your-llm-server.com/v1")),
        ({"retry": {"attempts": 3}}, Target(json_path="config", retry=RetryPolicy(attempts=3))),
        ({"request_timeout": 10000}, Target(json_path="config", request_timeout_ms=10000)),
        # The cache block is carried to the pipeline's cache step, not dropped.
        ({"cache": {"mode": "semantic", "max_age": 10000}},
         Target(json_path="config", cache=CachePolicy(mode="semantic", max_age_s=10000))),
        ({"forward_headers": ["Authorization"]}, Target(json_path="config", forward_headers=("authorization",))),
        ({"virtual_key": "openai-prod"}, Target(json_path="config", provider="@openai-prod")),
        ({"virtual_key": "@openai-prod"}, Target(json_path="config", provider="@openai-prod")),
        ({"passthrough": True}, Target(json_path="config")),
        ({"passthrough": False, "provider": "anthropic"}, Target(json_path="config", provider="anthropic")),
        ({"api_key": "sk-1"}, Target(json_path="config", api_key="sk-1")),
        ({"strict_open_ai_compliance": False}, Target(json_path="config", strict_open_ai_compliance=False)),
        ({"override_params": {"model": "@openai-prod/gpt-4o"}},
         Target(json_path="config", override_params=MappingProxyType({"model": "@openai-prod/gpt-4o"}))),
        ({"provider": "@my-private-llm"}, Target(json_path="config", provider="@my-private-llm")),
        ({"provider": "openai", "api_key": "sk", "name": "main", "weight": 0},
         Target(json_path="config", provider="openai", api_key="sk", name="main", weight=0.0)),
    ],
)  # fmt: skip
def test_hosted_any_of_shapes(config, expected):
    assert parse(config) == expected


@pytest.mark.parametrize(
    "retry, expected",
    [
        ({"attempts": 0}, RetryPolicy(attempts=0)),
        ({"attempts": 5}, RetryPolicy(attempts=5)),
        ({"attempts": 2.0}, RetryPolicy(attempts=2)),  # JavaScript clients cannot tell 2.0 from 2
        ({"attempts": 2, "on_status_codes": [429]}, RetryPolicy(2, frozenset({429}))),
        ({"attempts": 2, "on_status_codes": []}, RetryPolicy(2, frozenset())),  # OSS: explicit [] retries no status
        ({"attempts": 2, "use_retry_after_header": True}, RetryPolicy(2, DEFAULT_RETRY_STATUS_CODES, True)),
        ({"attempts": 2, "use_retry_after_headers": True}, RetryPolicy(2, DEFAULT_RETRY_STATUS_CODES, True)),
        ({"attempts": 2, "useRetryAfterHeaders": True}, RetryPolicy(2, DEFAULT_RETRY_STATUS_CODES, True)),
        ({"attempts": 2, "onStatusCodes": [503]}, RetryPolicy(2, frozenset({503}))),
    ],
)
def test_retry_policies(retry, expected):
    assert parse({"provider": "openai", "retry": retry}).retry == expected


def test_camel_case_config_like_the_js_sdk_sends_is_identical_to_snake_case():
    camel = {
        "provider": "openai",
        "customHost": "https://your-llm-server.com/v1/",
        "forwardHeaders": ["Authorization", "xApiKey"],
        "overrideParams": {"max_tokens": 5},
        "requestTimeout": 3000,
        "strictOpenAiCompliance": False,
        "apiKey": "k",
        "cbConfig": {"failureThreshold": 2, "cooldownInterval": 1000, "failureStatusCodes": [500]},
        "retry": {"attempts": 1, "onStatusCodes": [500], "useRetryAfterHeader": True},
    }
    snake = {
        "provider": "openai",
        "custom_host": "https://your-llm-server.com/v1/",
        "forward_headers": ["Authorization", "xApiKey"],
        "override_params": {"max_tokens": 5},
        "request_timeout": 3000,
        "strict_open_ai_compliance": False,
        "api_key": "k",
        "cb_config": {"failure_threshold": 2, "cooldown_interval": 1000, "failure_status_codes": [500]},
        "retry": {"attempts": 1, "on_status_codes": [500], "use_retry_after_header": True},
    }
    assert parse(camel) == parse(snake)


@pytest.mark.parametrize(
    "given, expected",
    [
        (["Authorization"], ("authorization",)),
        (["x_api_key", "X-Org-Id"], ("x-api-key", "x-org-id")),  # the Python SDK's snake_case names
        ([" x-custom-token "], ("x-custom-token",)),
        (["X-A", "x_a", "x-a"], ("x-a",)),
        ([], ()),
    ],
)
def test_forward_headers_are_lowercased_folded_and_deduplicated(given, expected):
    assert parse({"provider": "openai", "forward_headers": given}).forward_headers == expected


def test_check_host_sees_every_custom_host_whatever_its_spelling():
    seen: list[str] = []
    config = {
        "strategy": {"mode": "fallback"},
        "custom_host": "http://a/v1",
        "targets": [{"provider": "openai", "customHost": "http://b/v1"}, {"provider": "openai"}],
    }
    parse(config, check_host=seen.append)
    assert seen == ["http://a/v1", "http://b/v1"]


def test_without_check_host_custom_host_is_only_type_checked():
    assert parse({"provider": "openai", "custom_host": "http://blocked/"}, check_host=None).custom_host == (
        "http://blocked"
    )


def test_conditional_docs_example_compiles():
    config = {
        "strategy": {
            "mode": "conditional",
            "conditions": [
                {"query": {"metadata.user_plan": {"$eq": "paid"}}, "then": "finetuned-gpt4"},
                {"query": {"metadata.user_plan": {"$eq": "free"}}, "then": "base-gpt4"},
            ],
            "default": "base-gpt4",
        },
        "targets": [
            {"name": "finetuned-gpt4", "virtual_key": "xx", "override_params": {"model": "ft://gpt4-xxxxx"}},
            {"name": "base-gpt4", "virtual_key": "yy", "override_params": {"model": "gpt-4"}},
        ],
    }
    node = parse(config)
    assert node.strategy.default == "base-gpt4"
    assert [c.then for c in node.strategy.conditions] == ["finetuned-gpt4", "base-gpt4"]
    assert node.strategy.conditions[0].query == {"metadata.user_plan": {"$eq": "paid"}}


def test_loadbalance_allows_zero_weights_when_one_is_positive():
    config = {
        "strategy": {"mode": "loadbalance"},
        "targets": [{"provider": "openai", "weight": 0}, {"provider": "anthropic", "weight": 0.7}],
    }
    assert [t.weight for t in parse(config).children] == [0.0, 0.7]


def test_every_query_operator_is_accepted():
    query = {
        "metadata.a": {"$eq": "x", "$ne": "y"},
        "metadata.b": {"$gt": 1, "$gte": "2", "$lt": 3.5, "$lte": 4},
        "params.model": {"$in": ["a"], "$nin": ["b"], "$regex": "^gpt-4(o|-turbo)?$"},
        "params.messages": {"$length": {"$gte": 1}},
        "params.tools": {"$length": 2},
        "url.pathname": "/v1/chat/completions",
        "$or": [{"metadata.c": 1}, {"$and": [{"metadata.d": None}, {"params.stream": True}]}],
    }
    config = {
        "strategy": {"mode": "conditional", "conditions": [{"query": query, "then": "a"}]},
        "targets": [{"name": "a", "provider": "openai"}],
    }
    compiled = parse(config).strategy.conditions[0].query
    # The $regex operand is compiled with the config, once; everything else is kept as written.
    assert isinstance(compiled["params.model"]["$regex"], Regex)
    assert compiled == query | {"params.model": query["params.model"] | {"$regex": Regex("^gpt-4(o|-turbo)?$", None)}}
