"""Invalid configs: each case names the exact error entry (path and message) the client receives."""

from __future__ import annotations

import pytest

from sluicegate.errors import BadRequest, ConfigError
from tests.config.helpers import errors_of, parse

OK_LEAF = {"provider": "openai", "api_key": "sk-1"}
MODE_MSG = "Invalid 'mode' value. Must be one of: single, loadbalance, fallback, conditional"
PROVIDER_MSG = "Invalid 'provider' value. Must be one of: anthropic, azure-openai, openai, or an @slug"
CATCH_ALL = (
    "Invalid configuration. It must set something besides 'name' and 'weight': for example 'provider', "
    "'virtual_key', 'strategy' and 'targets', 'custom_host', 'override_params', 'retry' or 'request_timeout'"
)


def group(mode: str = "fallback", targets=None, **strategy) -> dict:
    return {"strategy": {"mode": mode, **strategy}, "targets": targets or [OK_LEAF, OK_LEAF]}


@pytest.mark.parametrize(
    "text",
    ["{", "pc-abc123", "[]", '"config"', "null", "1", "", "{'provider': 'openai'}", '{"a":1,}', b"\xff"],
)
def test_not_a_json_object_is_a_plain_bad_request(text):
    with pytest.raises(BadRequest) as info:
        parse(text)
    assert not isinstance(info.value, ConfigError)
    assert info.value.body() == {
        "status": "failure",
        "message": "Invalid config passed. You need to pass a valid json",
    }


def test_legacy_options_config_is_refused_with_the_reference_message():
    with pytest.raises(BadRequest) as info:
        parse({"mode": "single", "options": [{"provider": "openai"}]})
    assert not isinstance(info.value, ConfigError)
    assert info.value.message == (
        "This version of config is not supported in this route. Please migrate to the latest version"
    )


def test_error_body_lists_entries_under_errors():
    with pytest.raises(ConfigError) as info:
        parse({"provider": "nope"})
    assert info.value.body() == {
        "status": "failure",
        "message": "Invalid config passed",
        "errors": [f"path: provider, message: {PROVIDER_MSG}"],
    }


SINGLE_ERROR_CASES = [
    # --- the whole object ---
    ({}, f"path: , message: {CATCH_ALL}"),
    ({"name": "x", "weight": 2}, f"path: , message: {CATCH_ALL}"),
    ({"provider": "openai", "foo": 1}, "path: foo, message: Unrecognized key: 'foo'"),
    ({"provider": "openai", "on_status_codes": [429]}, "path: on_status_codes, message: Unrecognized key: 'on_status_codes'"),
    ({"provider": "openai", "input_guardrails": ["g"]}, "path: input_guardrails, message: 'input_guardrails' is not supported by this gateway"),
    ({"provider": "openai", "inputGuardrails": ["g"]}, "path: inputGuardrails, message: 'inputGuardrails' is not supported by this gateway"),
    ({"provider": "openai", "aws_region": "x"}, "path: aws_region, message: 'aws_region' is not supported by this gateway"),
    ({"provider": "openai", "api_key": "a", "apiKey": "b"}, "path: apiKey, message: 'apiKey' and 'api_key' are the same setting; give it once"),
    # --- strategy / targets ---
    (group("roundrobin"), f"path: strategy,mode, message: {MODE_MSG}"),
    (group(1), f"path: strategy,mode, message: {MODE_MSG}"),
    ({"strategy": {}, "targets": [OK_LEAF]}, "path: strategy,mode, message: Required"),
    ({"strategy": "fallback", "targets": [OK_LEAF]}, "path: strategy, message: Expected object, received string"),
    ({"strategy": {"mode": "fallback", "sticky": {"enabled": True}}, "targets": [OK_LEAF]}, "path: strategy,sticky, message: 'sticky' is not supported by this gateway"),
    ({"strategy": {"mode": "fallback", "bogus": 1}, "targets": [OK_LEAF]}, "path: strategy,bogus, message: Unrecognized key: 'bogus'"),
    ({"strategy": {"mode": "fallback"}}, "path: targets, message: 'targets' is required when 'strategy' is set"),
    ({"targets": [OK_LEAF]}, "path: strategy, message: 'strategy' is required when 'targets' is set"),
    ({"strategy": {"mode": "fallback"}, "targets": []}, "path: targets, message: 'targets' must not be empty"),
    ({"strategy": {"mode": "fallback"}, "targets": OK_LEAF}, "path: targets, message: Expected array, received object"),
    ({"strategy": {"mode": "fallback"}, "targets": [OK_LEAF, "openai"]}, "path: targets,1, message: Expected object, received string"),
    ({"strategy": {"mode": "fallback"}, "targets": [OK_LEAF, {}]}, f"path: targets,1, message: {CATCH_ALL}"),
    (group(on_status_codes=[429]) | {"provider": "openai"}, "path: provider, message: 'provider' cannot be set next to 'targets': it is not inherited, set it on each target"),
    (group() | {"apiKey": "k"}, "path: apiKey, message: 'apiKey' cannot be set next to 'targets': it is not inherited, set it on each target"),
    (group("loadbalance", on_status_codes=[429]), "path: strategy,on_status_codes, message: 'on_status_codes' is only used with mode 'fallback'"),
    (group(on_status_codes=["429"]), "path: strategy,on_status_codes,0, message: Expected number, received string"),
    (group(on_status_codes=[99]), "path: strategy,on_status_codes,0, message: Number must be greater than or equal to 100"),
    (group(conditions=[{"query": {}, "then": "a"}]), "path: strategy,conditions, message: 'conditions' is only used with mode 'conditional'"),
    (group("single", default="a"), "path: strategy,default, message: 'default' is only used with mode 'conditional'"),
    (group("loadbalance", [OK_LEAF | {"weight": 0}, OK_LEAF | {"weight": 0}]), "path: targets, message: At least one target must have a weight greater than 0"),
    # Two of 1e308 summed to infinity: every draw picked the last target.
    (group("loadbalance", [OK_LEAF | {"weight": 1e308}, OK_LEAF | {"weight": 1}]), "path: targets,0,weight, message: Number must be less than or equal to 1000000"),
    # --- provider and credentials ---
    ({"provider": "opnai"}, f"path: provider, message: {PROVIDER_MSG}"),
    ({"provider": "OpenAI"}, f"path: provider, message: {PROVIDER_MSG}"),
    ({"provider": 1}, "path: provider, message: Expected string, received number"),
    ({"provider": ""}, "path: provider, message: String must contain at least 1 character(s)"),
    ({"provider": "@My_LLM"}, "path: provider, message: Invalid 'provider' value. A Model Catalog slug is '@' then lowercase letters, digits and '-'"),
    ({"provider": "@"}, "path: provider, message: Invalid 'provider' value. A Model Catalog slug is '@' then lowercase letters, digits and '-'"),
    ({"provider": "openai", "api_key": 5}, "path: api_key, message: Expected string, received number"),
    # Sent as a header: the transport refused it, and the request was retried as an unreachable upstream (502).
    ({"provider": "openai", "api_key": "sk-secret\nX"},
     "path: api_key, message: must not contain line breaks or control characters (it is sent as a header)"),
    ({"provider": "openai", "api_key": "sk\x00"},
     "path: api_key, message: must not contain line breaks or control characters (it is sent as a header)"),
    ({"virtual_key": "Bad Key"}, "path: virtual_key, message: Invalid 'virtual_key' value. It must be a Model Catalog slug: lowercase letters, digits and '-'"),
    ({"virtual_key": "vk-1", "provider": "openai"}, "path: virtual_key, message: 'virtual_key' cannot be combined with 'provider'"),
    ({"passthrough": True, "provider": "openai"}, "path: provider, message: 'provider' cannot be combined with 'passthrough'"),
    ({"passthrough": "yes"}, "path: passthrough, message: Expected boolean, received string"),
    # --- weight / name ---
    ({"strategy": {"mode": "loadbalance"}, "targets": [OK_LEAF | {"weight": -1}]}, "path: targets,0,weight, message: Number must be greater than or equal to 0"),
    ({"strategy": {"mode": "loadbalance"}, "targets": [OK_LEAF | {"weight": "2"}]}, "path: targets,0,weight, message: Expected number, received string"),
    ({"strategy": {"mode": "loadbalance"}, "targets": [OK_LEAF | {"weight": True}]}, "path: targets,0,weight, message: Expected number, received boolean"),
    (OK_LEAF | {"name": 3}, "path: name, message: Expected string, received number"),
    # --- retry ---
    ({"retry": {"attempts": 6}}, "path: retry,attempts, message: Number must be less than or equal to 5"),
    ({"retry": {"attempts": -1}}, "path: retry,attempts, message: Number must be greater than or equal to 0"),
    ({"retry": {"attempts": 1.5}}, "path: retry,attempts, message: Expected integer, received float"),
    ({"retry": {"attempts": "3"}}, "path: retry,attempts, message: Expected number, received string"),
    ({"retry": {"attempts": True}}, "path: retry,attempts, message: Expected number, received boolean"),
    ({"retry": {}}, "path: retry,attempts, message: Required"),
    ({"retry": 3}, "path: retry, message: Expected object, received number"),
    ({"retry": {"attempts": 2, "on_status_codes": [600]}}, "path: retry,on_status_codes,0, message: Number must be less than or equal to 599"),
    ({"retry": {"attempts": 2, "on_status_codes": 429}}, "path: retry,on_status_codes, message: Expected array, received number"),
    ({"retry": {"attempts": 2, "use_retry_after_header": "yes"}}, "path: retry,use_retry_after_header, message: Expected boolean, received string"),
    ({"retry": {"attempts": 2, "use_retry_after_headers": 1}}, "path: retry,use_retry_after_headers, message: Expected boolean, received number"),
    ({"retry": {"attempts": 2, "use_retry_after_header": True, "use_retry_after_headers": True}}, "path: retry,use_retry_after_headers, message: 'use_retry_after_headers' and 'use_retry_after_header' are the same setting; give it once"),
    ({"retry": {"attempts": 2, "atempts": 3}}, "path: retry,atempts, message: Unrecognized key: 'atempts'"),
    ({"targets": [{"retry": {"attempts": 9}}, OK_LEAF], "strategy": {"mode": "fallback"}}, "path: targets,0,retry,attempts, message: Number must be less than or equal to 5"),
    # --- timeout / strictness / override_params ---
    ({"request_timeout": 0}, "path: request_timeout, message: Number must be greater than or equal to 1"),
    ({"request_timeout": -5}, "path: request_timeout, message: Number must be greater than or equal to 1"),
    ({"request_timeout": 1.5}, "path: request_timeout, message: Expected integer, received float"),
    ({"request_timeout": "1000"}, "path: request_timeout, message: Expected number, received string"),
    ({"request_timeout": 2**31}, "path: request_timeout, message: Number must be less than or equal to 2147483647"),
    ({"request_timeout": 1e300}, "path: request_timeout, message: Number must be less than or equal to 2147483647"),
    (OK_LEAF | {"strict_open_ai_compliance": "false"}, "path: strict_open_ai_compliance, message: Expected boolean, received string"),
    (OK_LEAF | {"override_params": []}, "path: override_params, message: Expected object, received array"),
    (OK_LEAF | {"override_params": "gpt-4o"}, "path: override_params, message: Expected object, received string"),
    # --- forward_headers ---
    (OK_LEAF | {"forward_headers": "Authorization"}, "path: forward_headers, message: Expected array, received string"),
    (OK_LEAF | {"forward_headers": [1]}, "path: forward_headers,0, message: Expected string, received number"),
    (OK_LEAF | {"forward_headers": [""]}, "path: forward_headers,0, message: String must contain at least 1 character(s)"),
    (OK_LEAF | {"forward_headers": ["bad header"]}, "path: forward_headers,0, message: Invalid header name: 'bad header'"),
    (OK_LEAF | {"forward_headers": ["x-portkey-forward-headers"]}, "path: forward_headers, message: forward_headers must not contain the 'x-portkey-forward-headers' header"),
    (OK_LEAF | {"forward_headers": ["X_Portkey_Forward_Headers"]}, "path: forward_headers, message: forward_headers must not contain the 'x-portkey-forward-headers' header"),
    (OK_LEAF | {"forward_headers": ["Authorization", "x-portkey-api-key"]}, "path: forward_headers, message: forward_headers must not contain the 'x-portkey-api-key' header"),
    (OK_LEAF | {"forward_headers": ["Metadata-Flavor"]}, "path: forward_headers, message: forward_headers must not contain the 'metadata-flavor' header"),
    # --- custom_host (fake guard refuses 'blocked' and 169.254) ---
    ({"provider": "openai", "custom_host": "http://blocked.example/v1"}, "path: custom_host, message: Invalid custom host: blocked host"),
    ({"provider": "openai", "custom_host": 7}, "path: custom_host, message: Expected string, received number"),
    ({"provider": "openai", "custom_host": ""}, "path: custom_host, message: String must contain at least 1 character(s)"),
    ({"strategy": {"mode": "fallback"}, "targets": [OK_LEAF, {"provider": "openai", "custom_host": "http://169.254.169.254/"}]}, "path: targets,1,custom_host, message: Invalid custom host: link-local and metadata addresses are not allowed"),
    ({"strategy": {"mode": "fallback"}, "custom_host": "http://blocked/", "targets": [OK_LEAF]}, "path: custom_host, message: Invalid custom host: blocked host"),
    # --- cache (validated only) ---
    ({"cache": {"mode": "fast"}}, "path: cache,mode, message: Invalid 'cache.mode' value. Must be one of: simple, semantic"),
    ({"cache": {"max_age": 60}}, "path: cache,mode, message: Required"),
    ({"cache": {"mode": "simple", "max_age": "1h"}}, "path: cache,max_age, message: Expected number, received string"),
    ({"cache": {"mode": "simple", "ttl": 5}}, "path: cache,ttl, message: Unrecognized key: 'ttl'"),
    ({"cache": "simple"}, "path: cache, message: Expected object, received string"),
    # A target's own cache block did nothing (the cache step reads the root's): refused, not ignored.
    ({"strategy": {"mode": "fallback"}, "targets": [OK_LEAF | {"cache": {"mode": "simple"}}]}, "path: targets,0,cache, message: 'cache' is honoured only on the config's root, not on a target, by this gateway: move it to the top level"),
    ({"strategy": {"mode": "fallback"}, "targets": [{"strategy": {"mode": "fallback"}, "cache": {"mode": "simple"}, "targets": [OK_LEAF]}]}, "path: targets,0,cache, message: 'cache' is honoured only on the config's root, not on a target, by this gateway: move it to the top level"),
    # --- cb_config ---
    (OK_LEAF | {"cb_config": {"failure_threshold": 3, "cooldown_interval": 500}}, "path: cb_config,cooldown_interval, message: Number must be greater than or equal to 1000"),
    (OK_LEAF | {"cb_config": {"failure_threshold": 3}}, "path: cb_config,cooldown_interval, message: Required"),
    (OK_LEAF | {"cb_config": {"failure_threshold": 1, "cooldown_interval": 10**12}}, "path: cb_config,cooldown_interval, message: Number must be less than or equal to 86400000"),
    (OK_LEAF | {"cb_config": {"cooldown_interval": 30000}}, "path: cb_config, message: cb_config needs 'failure_threshold' or 'failure_threshold_percentage'"),
    (OK_LEAF | {"cb_config": {"failure_threshold": 0, "cooldown_interval": 30000}}, "path: cb_config,failure_threshold, message: Number must be greater than or equal to 1"),
    (OK_LEAF | {"cb_config": {"failure_threshold_percentage": 120, "cooldown_interval": 30000}}, "path: cb_config,failure_threshold_percentage, message: Number must be less than or equal to 100"),
    (OK_LEAF | {"cb_config": {"failure_threshold": 2, "cooldown_interval": 30000, "failure_status_codes": ["500"]}}, "path: cb_config,failure_status_codes,0, message: Expected number, received string"),
    (group(cb_config={"failure_threshold": 2, "cooldown_interval": 30000}) | {"cb_config": {"failure_threshold": 2, "cooldown_interval": 30000}}, "path: strategy,cb_config, message: cb_config is set both here and on the node; give it once"),
    (group(cb_config={"failure_threshold": 2}), "path: strategy,cb_config,cooldown_interval, message: Required"),
]  # fmt: skip


@pytest.mark.parametrize("config, expected", SINGLE_ERROR_CASES)
def test_single_error(config, expected):
    assert errors_of(config) == [expected]


def test_several_errors_are_all_reported_in_document_order():
    config = {
        "strategy": {"mode": "x"},
        "targets": [{"provider": "nope", "retry": {"attempts": 9}}, {}],
        "foo": 1,
    }
    assert errors_of(config) == [
        "path: foo, message: Unrecognized key: 'foo'",
        f"path: targets,0,provider, message: {PROVIDER_MSG}",
        "path: targets,0,retry,attempts, message: Number must be less than or equal to 5",
        f"path: targets,1, message: {CATCH_ALL}",
        f"path: strategy,mode, message: {MODE_MSG}",
    ]


def test_nesting_deeper_than_the_limit_is_refused():
    config = OK_LEAF
    for _ in range(18):
        config = {"strategy": {"mode": "single"}, "targets": [config]}
    path = ",".join(["targets", "0"] * 17)
    assert errors_of(config) == [f"path: {path}, message: Targets are nested more than 16 levels deep"]


# camelCase aliases go through the very same checks; the path names the key as the user wrote it.
CAMEL_CASES = [
    ({"provider": "openai", "customHost": "http://blocked/"}, "path: customHost, message: Invalid custom host: blocked host"),
    (OK_LEAF | {"forwardHeaders": ["x-portkey-forward-headers"]}, "path: forwardHeaders, message: forward_headers must not contain the 'x-portkey-forward-headers' header"),
    (OK_LEAF | {"overrideParams": []}, "path: overrideParams, message: Expected object, received array"),
    ({"requestTimeout": 0}, "path: requestTimeout, message: Number must be greater than or equal to 1"),
    ({"retry": {"attempts": 1, "onStatusCodes": [600]}}, "path: retry,onStatusCodes,0, message: Number must be less than or equal to 599"),
    ({"retry": {"attempts": 1, "useRetryAfterHeader": "y"}}, "path: retry,useRetryAfterHeader, message: Expected boolean, received string"),
    ({"retry": {"attempts": 1, "useRetryAfterHeaders": "y"}}, "path: retry,useRetryAfterHeaders, message: Expected boolean, received string"),
    (OK_LEAF | {"strictOpenAiCompliance": "no"}, "path: strictOpenAiCompliance, message: Expected boolean, received string"),
    (OK_LEAF | {"cbConfig": {"failureThreshold": 1, "cooldownInterval": 5}}, "path: cbConfig,cooldownInterval, message: Number must be greater than or equal to 1000"),
    ({"provider": "openai", "apiKey": 5}, "path: apiKey, message: Expected string, received number"),
    ({"virtualKey": "Bad Key"}, "path: virtualKey, message: Invalid 'virtual_key' value. It must be a Model Catalog slug: lowercase letters, digits and '-'"),
    ({"cache": {"mode": "simple", "maxAge": "x"}}, "path: cache,maxAge, message: Expected number, received string"),
    (group(onStatusCodes=[1000]), "path: strategy,onStatusCodes,0, message: Number must be less than or equal to 599"),
]  # fmt: skip


@pytest.mark.parametrize("config, expected", CAMEL_CASES)
def test_camel_case_alias_is_validated_like_snake_case(config, expected):
    assert errors_of(config) == [expected]


CONDITIONAL_TARGETS = [OK_LEAF | {"name": "a"}, OK_LEAF | {"name": "b"}]


def conditional(conditions=None, default=None, targets=None) -> dict:
    strategy: dict = {"mode": "conditional"}
    if conditions is not None:
        strategy["conditions"] = conditions
    if default is not None:
        strategy["default"] = default
    return {"strategy": strategy, "targets": targets or CONDITIONAL_TARGETS}


CONDITIONAL_CASES = [
    (conditional(), "path: strategy,conditions, message: No conditions passed in the query router"),
    (conditional([]), "path: strategy,conditions, message: No conditions passed in the query router"),
    (conditional({"query": {}}), "path: strategy,conditions, message: Expected array, received object"),
    (conditional([{"query": {}, "then": "c"}]), "path: strategy,conditions,0,then, message: Invalid target name found in the query router: c"),
    (conditional([{"query": {}, "then": "a"}], default="zz"), "path: strategy,default, message: Invalid target name found in the query router: zz"),
    (conditional([{"query": {}}]), "path: strategy,conditions,0,then, message: Required"),
    (conditional([{"then": "a"}]), "path: strategy,conditions,0,query, message: Required"),
    (conditional([{"query": {}, "then": "a", "else": "b"}]), "path: strategy,conditions,0,else, message: Unrecognized key: 'else'"),
    (conditional([{"query": [], "then": "a"}]), "path: strategy,conditions,0,query, message: Expected object, received array"),
    (conditional(["a"]), "path: strategy,conditions,0, message: Expected object, received string"),
    (conditional([{"query": {}, "then": 1}]), "path: strategy,conditions,0,then, message: Expected string, received number"),
    (conditional([{"query": {"metadata.x": {"$foo": 1}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$foo, message: Unsupported operator used in the query router: $foo"),
    (conditional([{"query": {"$not": [{"metadata.x": 1}]}, "then": "a"}]), "path: strategy,conditions,0,query,$not, message: Unsupported operator used in the query router: $not"),
    (conditional([{"query": {"metadata.x": {"$or": [{"$eq": 1}]}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$or, message: Unsupported operator used in the query router: $or"),
    (conditional([{"query": {"metadata.x": {"plan": "pro"}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,plan, message: Unsupported operator used in the query router: plan"),
    (conditional([{"query": {"$or": [{"metadata.x": {"$bad": 1}}]}, "then": "a"}]), "path: strategy,conditions,0,query,$or,0,metadata.x,$bad, message: Unsupported operator used in the query router: $bad"),
    (conditional([{"query": {"metadata.x": {"$in": "pro"}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$in, message: Expected array, received string"),
    (conditional([{"query": {"metadata.x": {"$nin": 1}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$nin, message: Expected array, received number"),
    (conditional([{"query": {"metadata.x": {"$gt": [1]}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$gt, message: Expected number, received array"),
    (conditional([{"query": {"metadata.x": {"$regex": 5}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$regex, message: Expected string, received number"),
    (conditional([{"query": {"metadata.x": {"$regex": "(a)\\1"}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$regex, message: Invalid $regex pattern: invalid escape sequence: \\1"),
    (conditional([{"query": {"metadata.x": {"$regex": "^(?!free)"}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$regex, message: Invalid $regex pattern: invalid perl operator: (?!"),
    (conditional([{"query": {"$or": [{"params.x": {"$length": {"$regex": "(?<=1)2"}}}]}, "then": "a"}]), "path: strategy,conditions,0,query,$or,0,params.x,$length,$regex, message: Invalid $regex pattern: invalid perl operator: (?<="),
    (conditional([{"query": {"metadata.x": {"$regex": "a" * 257}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$regex, message: $regex pattern is longer than 256 characters"),
    (conditional([{"query": {"metadata.x": {"$length": "3"}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$length, message: Expected number, received string"),
    (conditional([{"query": {"metadata.x": {"$length": {"$near": 3}}}, "then": "a"}]), "path: strategy,conditions,0,query,metadata.x,$length,$near, message: Unsupported operator used in the query router: $near"),
    (conditional([{"query": {"$and": {"metadata.x": 1}}, "then": "a"}]), "path: strategy,conditions,0,query,$and, message: Expected array, received object"),
    (conditional([{"query": {"$or": []}, "then": "a"}]), "path: strategy,conditions,0,query,$or, message: Array must contain at least 1 element(s)"),
    (conditional([{"query": {"$and": ["x"]}, "then": "a"}]), "path: strategy,conditions,0,query,$and,0, message: Expected object, received string"),
    (conditional([{"query": {"user.plan": "pro"}, "then": "a"}]), "path: strategy,conditions,0,query,user.plan, message: Invalid query field 'user.plan'. Use metadata.<key>, params.<key> or url.pathname"),
    (conditional([{"query": {"metadata": "pro"}, "then": "a"}]), "path: strategy,conditions,0,query,metadata, message: Invalid query field 'metadata'. Use metadata.<key>, params.<key> or url.pathname"),
    (conditional([{"query": {"url.host": "x"}, "then": "a"}]), "path: strategy,conditions,0,query,url.host, message: Invalid query field 'url.host'. Use metadata.<key>, params.<key> or url.pathname"),
    (conditional([{"query": {"metadata..x": 1}, "then": "a"}]), "path: strategy,conditions,0,query,metadata..x, message: Invalid query field 'metadata..x'. Use metadata.<key>, params.<key> or url.pathname"),
    (conditional([{"query": {}, "then": "a"}], targets=[OK_LEAF | {"name": "a"}, OK_LEAF | {"name": "a"}]), "path: targets,1,name, message: Duplicate target name 'a'"),
]  # fmt: skip


@pytest.mark.parametrize("config, expected", CONDITIONAL_CASES)
def test_conditional_strategy_errors(config, expected):
    assert errors_of(config) == [expected]


def test_invalid_regex_is_reported_with_the_reason():
    config = conditional([{"query": {"params.model": {"$regex": "gpt-("}}, "then": "a"}])
    (error,) = errors_of(config)
    assert error.startswith("path: strategy,conditions,0,query,params.model,$regex, message: Invalid $regex pattern: ")


@pytest.mark.parametrize(
    "targets, expected",
    [
        ({}, "path: targets, message: Expected array, received object"),
        ([1, {"provider": "openai", "weight": 0}], "path: targets,0, message: Expected object, received number"),
        ([{"provider": "openai", "weight": "x"}, {"provider": "openai", "weight": 0}],
         "path: targets,0,weight, message: Expected number, received string"),
    ],
)  # fmt: skip
def test_broken_loadbalance_targets_give_one_error_not_a_cascade(targets, expected):
    assert errors_of({"strategy": {"mode": "loadbalance"}, "targets": targets}) == [expected]


def test_a_broken_child_name_does_not_cause_a_second_bogus_then_error():
    config = conditional([{"query": {}, "then": "a"}], targets=[OK_LEAF | {"name": 1}, OK_LEAF | {"name": "b"}])
    assert errors_of(config) == ["path: targets,0,name, message: Expected string, received number"]
