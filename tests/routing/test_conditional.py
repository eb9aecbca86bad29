"""The conditional router: every operator, nesting, missing fields, OSS quirks, and the router's errors."""

from __future__ import annotations

import pytest

from sluicegate.config.model import Condition, Strategy
from sluicegate.errors import RouterError
from sluicegate.routing.conditional import choose_conditional, js_number, matches

METADATA = {"plan": "paid", "tier": "10", "region": "eu", "empty": "", "nothing": None, "n": 3}
PARAMS = {
    "model": "gpt-4o",
    "temperature": 0.7,
    "max_tokens": 512,
    "stream": True,
    "stop": ["\n", "END"],
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    "response_format": {"type": "json_object"},
    "flags": [True, {"on": True}],
}
CONTEXT = {"metadata": METADATA, "params": PARAMS, "url": {"pathname": "/v1/chat/completions"}}


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, True),
        # bare values: strict equality
        ({"metadata.plan": "paid"}, True),
        ({"metadata.plan": "free"}, False),
        ({"metadata.tier": 10}, False),  # "10" is not 10
        ({"metadata.n": 3}, True),
        ({"metadata.n": 3.0}, True),  # one number type, as in JavaScript
        ({"params.stream": True}, True),
        ({"params.stream": 1}, False),  # true is not 1
        ({"metadata.nothing": None}, True),
        ({"metadata.absent": None}, False),  # missing is not null
        ({"url.pathname": "/v1/chat/completions"}, True),
        ({"url.pathname": "/v1/embeddings"}, False),
        ({"params.stop": ["\n", "END"]}, True),  # arrays compare by content (OSS: never matches)
        # $eq / $ne
        ({"metadata.plan": {"$eq": "paid"}}, True),
        ({"metadata.plan": {"$ne": "paid"}}, False),
        ({"metadata.plan": {"$ne": "free"}}, True),
        ({"metadata.absent": {"$eq": "x"}}, False),
        ({"metadata.absent": {"$ne": "x"}}, True),  # missing is "not equal", as in OSS and MongoDB
        ({"params.response_format": {"$eq": {"type": "json_object"}}}, True),
        # inside arrays and objects too, true is not 1 (Python's == says it is)
        ({"params.flags": {"$eq": [True, {"on": True}]}}, True),
        ({"params.flags": {"$eq": [1, {"on": True}]}}, False),
        ({"params.flags": {"$eq": [True, {"on": 1}]}}, False),
        ({"params.flags": [True]}, False),
        # ordering: parseFloat on both sides
        ({"metadata.tier": {"$gt": 9}}, True),
        ({"metadata.tier": {"$gt": "9"}}, True),
        ({"metadata.tier": {"$gt": 10}}, False),
        ({"metadata.tier": {"$gte": 10}}, True),
        ({"metadata.tier": {"$lt": 10}}, False),
        ({"metadata.tier": {"$lte": "10.0"}}, True),
        ({"params.temperature": {"$gt": 0.5, "$lt": 1}}, True),
        ({"params.temperature": {"$gt": 0.5, "$lt": 0.6}}, False),
        ({"metadata.plan": {"$gt": 0}}, False),  # NaN compares false
        ({"metadata.absent": {"$lt": 100}}, False),
        ({"params.stream": {"$gte": 0}}, False),  # parseFloat(true) is NaN
        # $in / $nin
        ({"metadata.region": {"$in": ["us", "eu"]}}, True),
        ({"metadata.region": {"$in": ["us"]}}, False),
        ({"metadata.n": {"$in": ["3"]}}, False),
        ({"metadata.absent": {"$in": ["x"]}}, False),
        ({"metadata.region": {"$nin": ["us"]}}, True),
        ({"metadata.region": {"$nin": ["eu"]}}, False),
        ({"metadata.absent": {"$nin": ["x"]}}, True),
        # $regex: unanchored search, JavaScript-style stringification
        ({"params.model": {"$regex": "^gpt-4"}}, True),
        ({"params.model": {"$regex": "claude"}}, False),
        ({"params.model": {"$regex": "4O"}}, False),  # no flags: case-sensitive
        ({"metadata.n": {"$regex": "^3$"}}, True),
        ({"params.stream": {"$regex": "^true$"}}, True),
        ({"metadata.absent": {"$regex": "undef"}}, False),  # OSS matches the string "undefined"
        ({"metadata.plan": {"$regex": "("}}, False),  # invalid pattern is false, as in OSS
        ({"metadata.plan": {"$regex": "^p", "$ne": "paid"}}, False),  # OSS would skip $ne after $regex
        ({"params.stop": {"$regex": "END"}}, False),  # arrays are not strings
        # $length (newest OSS)
        ({"params.messages": {"$length": 2}}, True),
        ({"params.messages": {"$length": 3}}, False),
        ({"params.messages": {"$length": {"$gte": 2, "$lt": 5}}}, True),
        ({"params.model": {"$length": 6}}, False),  # only arrays have a length here
        # deeper paths and list indexes (OSS reads only two segments)
        ({"params.response_format.type": "json_object"}, True),
        ({"params.messages.0.role": "system"}, True),
        ({"params.messages.5.role": "system"}, False),
        ({"params.messages.\u00b2.role": "system"}, False),  # '²' is a digit to str.isdigit, not to int(): a 500
        ({"params.model.name": "x"}, False),
        # several keys: AND
        ({"metadata.plan": "paid", "metadata.region": "eu"}, True),
        ({"metadata.plan": "paid", "metadata.region": "us"}, False),
        # $and / $or, nested
        ({"$or": [{"metadata.plan": "free"}, {"metadata.region": "eu"}]}, True),
        ({"$or": [{"metadata.plan": "free"}, {"metadata.region": "us"}]}, False),
        ({"$and": [{"metadata.plan": "paid"}, {"params.stream": True}]}, True),
        ({"$and": [{"metadata.plan": "paid"}, {"params.stream": False}]}, False),
        ({"$or": [{"$and": [{"metadata.plan": "free"}]}, {"$and": [{"metadata.n": {"$gte": 3}}, {"url.pathname": {"$regex": "chat"}}]}]}, True),
        # siblings of $or are ANDed (OSS would return the $or result alone)
        ({"$or": [{"metadata.plan": "paid"}], "metadata.region": "us"}, False),
        ({"metadata.region": "us", "$or": [{"metadata.plan": "paid"}]}, False),
    ],
)  # fmt: skip
def test_matches(query, expected):
    assert matches(query, CONTEXT) is expected


def strategy(*conditions: tuple[dict, str], default: str | None = None) -> Strategy:
    return Strategy(
        mode="conditional",
        conditions=tuple(Condition(query=q, then=t) for q, t in conditions),
        default=default,
    )


NAMES = ["free-model", "paid-model", None, "fallback-model"]


def choose(s: Strategy, metadata=None, params=None, pathname="/v1/chat/completions") -> int:
    return choose_conditional(s, NAMES, metadata=metadata or {}, params=params or {}, pathname=pathname)


def test_first_matching_condition_wins():
    s = strategy(({"metadata.plan": "paid"}, "paid-model"), ({}, "free-model"), default="fallback-model")
    assert choose(s, {"plan": "paid"}) == 1
    assert choose(s, {"plan": "free"}) == 0


def test_default_when_nothing_matches():
    s = strategy(({"metadata.plan": "paid"}, "paid-model"), default="fallback-model")
    assert choose(s, {"plan": "free"}) == 3
    assert choose(s, {}) == 3


def test_params_and_pathname_are_used():
    s = strategy(
        ({"url.pathname": {"$regex": "embeddings$"}}, "free-model"),
        ({"params.model": {"$in": ["gpt-4o"]}}, "paid-model"),
    )
    assert choose(s, params={"model": "gpt-4o"}) == 1
    assert choose(s, params={"model": "gpt-4o"}, pathname="/v1/embeddings") == 0


@pytest.mark.parametrize(
    "s, message",
    [
        (Strategy(mode="conditional"), "No conditions passed in the query router"),
        (strategy(({"metadata.plan": "x"}, "paid-model")), "Query router did not resolve to any valid target"),
        (strategy(({}, "nope")), "Invalid target name found in the query router: nope"),
        (strategy(({"metadata.plan": "x"}, "paid-model"), default="gone"), "Invalid target name found in the query router: gone"),
        (strategy(({"metadata.plan": {"$foo": 1}}, "paid-model")), "Unsupported operator used in the query router: $foo"),
        (strategy(({"$nor": []}, "paid-model")), "Unsupported operator used in the query router: $nor"),
        (strategy(({"$or": {"metadata.a": 1}}, "paid-model")), "Unsupported operator used in the query router: $or"),
        (strategy(({"params.messages": {"$length": {"$size": 1}}}, "paid-model")), "Unsupported operator used in the query router: $size"),
    ],
)  # fmt: skip
def test_router_errors_carry_the_reference_messages(s, message):
    with pytest.raises(RouterError) as info:
        choose(s, {"plan": "free"}, {"messages": [1]})
    assert info.value.status == 400
    assert info.value.body() == {"status": "failure", "message": message}


def test_an_unsupported_operator_in_a_later_condition_is_not_reached_when_an_earlier_matches():
    s = strategy(({}, "free-model"), ({"metadata.x": {"$foo": 1}}, "paid-model"))
    assert choose(s) == 0


def test_over_long_regex_subject_does_not_match():
    s = strategy(({"params.prompt": {"$regex": "a"}}, "paid-model"), default="free-model")
    assert choose(s, params={"prompt": "a" * 16384}) == 1
    assert choose(s, params={"prompt": "a" * 16385}) == 0


@pytest.mark.parametrize(
    "value, expected",
    [("10", 10.0), ("  2.5kg", 2.5), ("-1e3", -1000.0), (".5", 0.5), ("5.", 5.0), ("1e", 1.0), ("Infinity", float("inf")),
     ("abc", None), ("", None), (True, None), (None, None), ([5], None), (7, 7.0), (0.25, 0.25)],
)  # fmt: skip
def test_js_number_follows_parse_float(value, expected):
    assert js_number(value) == expected
