"""Pure limit logic by tables: validation, UTC periods, the reservation estimate, a request's plan."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from sluicegate.limits.checks import BUDGET, RATE, Estimate, Subject, Usage, actual_amount, plan
from sluicegate.limits.estimate import DEFAULT_COMPLETION_TOKENS, cost, reserved_tokens
from sluicegate.limits.model import (
    LimitError,
    Limits,
    looser_part,
    parse_limits,
    parse_rate_limits,
    parse_usage_limits,
)
from sluicegate.limits.periods import period_end_ms, period_id, retry_after_s


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


PERIODS = [  # (instant, reset, same period as, different period from, period end)
    ("2026-03-15T23:59:59.999", "daily", "2026-03-15T00:00:00", "2026-03-16T00:00:00", "2026-03-16T00:00:00"),
    ("2026-12-02T10:00:00", "weekly", "2026-11-30T00:00:00", "2026-11-29T23:59:59.999", "2026-12-07T00:00:00"),
    ("2026-12-06T23:59:59.999", "weekly", "2026-11-30T00:00:00", "2026-12-07T00:00:00", "2026-12-07T00:00:00"),
    ("2026-02-28T12:00:00", "monthly", "2026-02-01T00:00:00", "2026-03-01T00:00:00", "2026-03-01T00:00:00"),
    ("2024-02-29T12:00:00", "monthly", "2024-02-01T00:00:00", "2024-01-31T23:59:59.999", "2024-03-01T00:00:00"),
    ("2026-12-31T23:59:59.999", "monthly", "2026-12-01T00:00:00", "2027-01-01T00:00:00", "2027-01-01T00:00:00"),
    ("2000-03-01T00:00:00", "monthly", "2000-03-31T23:00:00", "2000-02-29T23:59:59.999", "2000-04-01T00:00:00"),
]


@pytest.mark.parametrize(("at", "reset", "same", "other", "end"), PERIODS)
def test_periods_change_exactly_at_utc_boundaries(at: str, reset: str, same: str, other: str, end: str) -> None:
    assert period_id(ms(at), reset) == period_id(ms(same), reset)
    assert period_id(ms(at), reset) != period_id(ms(other), reset)
    assert period_end_ms(ms(at), reset) == ms(end)
    assert period_id(ms(end), reset) == period_id(ms(at), reset) + 1  # consecutive ids, no gaps


def test_a_budget_without_reset_is_one_period_forever() -> None:
    assert period_id(ms("1999-01-01T00:00:00"), None) == period_id(ms("2099-01-01T00:00:00"), None)
    assert period_end_ms(ms("2026-01-01T00:00:00"), None) is None


@pytest.mark.parametrize(("oldest", "window", "now", "expected"),
                         [(0, 60_000, 0, 60), (0, 60_000, 59_001, 1), (0, 60_000, 59_999, 1), (1_500, 60_000, 1_000, 61)])
def test_retry_after_rounds_up_to_whole_seconds(oldest: int, window: int, now: int, expected: int) -> None:
    assert retry_after_s(oldest, window, now) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ({"rate_limits": "100 rpm"}, "'rate_limits' must be a list"),
    ({"rate_limits": {"type": "requests"}}, "'rate_limits[0].unit' must be one of"),
    ({"rate_limits": [{"type": "calls", "unit": "rpm", "value": 1}]}, "'rate_limits[0].type' must be one of"),
    ({"rate_limits": [{"type": "requests", "unit": "rps", "value": 1}]}, "'rate_limits[0].unit' must be one of"),
    ({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 0}]}, "'rate_limits[0].value' must be a positive"),
    ({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1.5}]}, "must be a positive integer"),
    ({"rate_limits": [{"type": "requests", "unit": "rpm", "value": True}]}, "must be a positive integer"),
    ({"usage_limits": {"type": "money", "credit_limit": 1}}, "'usage_limits.type' must be one of"),
    ({"usage_limits": {"type": "cost"}}, "'usage_limits.credit_limit' must be a positive number"),
    ({"usage_limits": {"type": "cost", "credit_limit": 5, "periodic_reset": "hourly"}}, "periodic_reset"),
    ({"usage_limits": {"type": "cost", "credit_limit": 5, "alert_threshold": -1}}, "alert_threshold"),
    # The CLI's float() reads "nan", "inf" and "1e400": each was stored as a null budget (no limit at all)
    ({"usage_limits": {"type": "cost", "credit_limit": math.inf}}, "'usage_limits.credit_limit' must be a positive"),
    ({"usage_limits": {"type": "cost", "credit_limit": math.nan}}, "'usage_limits.credit_limit' must be a positive"),
    ({"usage_limits": {"type": "cost", "credit_limit": 5, "alert_threshold": math.nan}}, "alert_threshold"),
])
def test_bad_limits_are_400s_naming_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(LimitError) as caught:
        parse_limits(raw)
    assert caught.value.status == 400 and message in caught.value.message


@pytest.mark.parametrize(("price", "side"), [({"input": math.nan, "output": 1}, "input"),
                                            ({"input": 1, "output": math.inf}, "output")])
def test_a_price_must_be_a_finite_number(price: dict[str, float], side: str) -> None:
    from sluicegate.limits.prices import parse_prices

    with pytest.raises(LimitError, match=f"'prices.m.{side}' must be a number"):
        parse_prices({"m": price})


def test_portkey_shapes_parse() -> None:
    limits = parse_limits({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 100},
                                           {"type": "tokens", "unit": "rpd", "value": 10_000}],
                           "usage_limits": {"type": "cost", "credit_limit": 50, "periodic_reset": "monthly",
                                            "alert_threshold": 40}})
    assert [r.shape() for r in limits.rate_limits] == [{"type": "requests", "unit": "rpm", "value": 100},
                                                       {"type": "tokens", "unit": "rpd", "value": 10_000}]
    assert limits.rate_limits[1].window_ms == 86_400_000
    assert limits.usage_limits is not None and limits.usage_limits.shape() == {
        "type": "cost", "credit_limit": 50.0, "periodic_reset": "monthly", "alert_threshold": 40.0}
    assert parse_rate_limits(None) == () and parse_usage_limits({}) is None


@pytest.mark.parametrize(("body", "expected"), [
    (None, (0, DEFAULT_COMPLETION_TOKENS)),
    ({"messages": [{"role": "user", "content": "abcdefgh"}], "max_tokens": 10}, (2, 10)),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "abcde"}]}]}, (2, DEFAULT_COMPLETION_TOKENS)),
    ({"prompt": "abc", "max_completion_tokens": 7, "max_tokens": 99}, (1, 7)),
    ({"input": ["abcd", "efgh"], "max_tokens": 0}, (2, 0)),
    ({"messages": [], "max_tokens": "12"}, (0, DEFAULT_COMPLETION_TOKENS)),
    ({"messages": [], "max_tokens": 4096.0}, (0, 4096)),  # what Python's json writes for a float
    ({"messages": [], "max_tokens": 10.5}, (0, 11)),
    ({"messages": [], "max_tokens": 1e308}, (0, int(1e308))),  # reserved as asked: more than any budget
    ({"messages": [], "max_tokens": -1.0}, (0, DEFAULT_COMPLETION_TOKENS)),
    ({"messages": [], "max_tokens": True}, (0, DEFAULT_COMPLETION_TOKENS)),
    # A Messages request's system prompt, a string or text blocks: it was not reserved.
    ({"system": "a" * 400, "messages": [{"role": "user", "content": "abcd"}], "max_tokens": 8}, (101, 8)),
    ({"system": [{"type": "text", "text": "a" * 40, "cache_control": {"type": "ephemeral"}}], "messages": []},
     (10, DEFAULT_COMPLETION_TOKENS)),
])
def test_reservation_estimate(body: dict[str, object] | None, expected: tuple[int, int]) -> None:
    assert reserved_tokens(body) == expected


def test_cost_needs_a_price() -> None:
    assert cost(1000, 500, (0.001, 0.002)) == pytest.approx(2.0)
    assert cost(1000, 500, None) is None


def test_plan_checks_every_subject_and_refuses_to_skip_an_unpriced_cost_budget() -> None:
    key = Subject("key", "ak-1", parse_limits({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 3},
                                                                {"type": "tokens", "unit": "rph", "value": 900}],
                                                "usage_limits": {"type": "tokens", "credit_limit": 5000}}))
    workspace = Subject("workspace", "ws-1", parse_limits({"usage_limits": {"type": "cost", "credit_limit": 9}}))
    provider = Subject("provider", "gpu", Limits())
    priced = plan([key, workspace, provider], Estimate(tokens=120, cost=0.5))
    assert [(c.kind, c.measure, c.amount, c.limit) for c in priced.checks] == [
        (RATE, "requests", 1.0, 3), (RATE, "tokens", 120.0, 900), (BUDGET, "tokens", 120.0, 5000.0),
        (BUDGET, "cost", 0.5, 9.0)]
    assert priced.unpriced is None
    assert len({c.key for c in priced.checks}) == 4
    unpriced = plan([key, workspace], Estimate(tokens=120, cost=None))
    assert unpriced.unpriced == "workspace 'ws-1'"
    assert [actual_amount(c, Usage(77, 0.25)) for c in priced.checks] == [None, 77.0, 77.0, 0.25]


@pytest.mark.parametrize("model", ["", "m" * 257, "line\nbreak", "esc\x1b[31m"])
def test_a_price_s_model_name_is_one_that_can_name_a_model(model: str) -> None:
    # An empty or 5,000-character name was stored, and could never match a request's model.
    from sluicegate.limits.prices import parse_prices

    with pytest.raises(LimitError, match="'prices' keys must be model names of 1 to 256 printable characters"):
        parse_prices({model: {"input": 1, "output": 1}})
    assert parse_prices({"m" * 256: {"input": 1, "output": 1}, "*": {"input": 0, "output": 0}})


def test_prices_per_1k_or_1m_tokens_and_the_wildcard() -> None:
    from sluicegate.limits.prices import parse_prices, price_of

    prices = parse_prices({"llama-3": {"input": 0.5, "output": 1.5, "per": 1_000_000},
                           "small": {"input": 2, "output": 4}, "*": {"input": 1, "output": 1, "per": 1000}})
    assert prices["llama-3"] == pytest.approx((0.5e-6, 1.5e-6))  # per token
    assert prices["small"] == pytest.approx((0.002, 0.004))  # per 1000 by default
    assert price_of(prices, "llama-3") == prices["llama-3"] and price_of(prices, "other") == prices["*"]
    assert price_of(parse_prices({"llama-3": {"input": 1, "output": 1}}), "other") is None  # unpriced: no cost
    assert cost(1000, 1000, prices["llama-3"]) == pytest.approx(0.002)
    for raw, message in (({"m": {"input": 1, "output": 1, "per": 100}}, "'prices.m.per' must be 1000 or 1000000"),
                         ({"m": {"input": -1, "output": 1}}, "'prices.m.input' must be a number"),
                         ({"m": "cheap"}, "'prices.m' must be an object")):
        with pytest.raises(LimitError, match=message.replace(".", r"\.")):
            parse_prices(raw)


@pytest.mark.parametrize(("config", "expected"), [
    ({"provider": "@gpu"}, ("gpu", None)),
    ({"provider": "@gpu", "override_params": {"model": "llama-3"}}, ("gpu", "llama-3")),
    ({"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "@gpu"}, {"provider": "@gpu"}]}, ("gpu", None)),
    ({"strategy": {"mode": "fallback"}, "targets": [{"provider": "@gpu"}, {"provider": "@cpu"}]}, (None, None)),
    ({"provider": "openai", "custom_host": "http://127.0.0.1:9/v1"}, (None, None)),
])
def test_the_catalog_provider_a_config_tree_reaches(config: dict[str, object], expected: tuple) -> None:
    from sluicegate.pipeline.limit import only_catalog_target
    from tests.config.helpers import parse

    assert only_catalog_target(parse(config)) == expected


@pytest.mark.parametrize("raw", [
    {"rate_limits": [{"type": "requests", "unit": ["rpm"], "value": 1}]},
    {"rate_limits": [{"type": "requests", "unit": {"rpm": 1}, "value": 1}]},
    {"rate_limits": [{"type": ["requests"], "unit": "rpm", "value": 1}]},
    {"usage_limits": {"type": ["cost"], "credit_limit": 1}},
    {"usage_limits": {"type": "cost", "credit_limit": 1, "periodic_reset": ["daily"]}},
    {"usage_limits": {"type": "cost", "credit_limit": [1]}},
    {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1e300}]},  # an integer, past JSON's exact ones
    {"rate_limits": [{"type": "tokens", "unit": "rpd", "value": 2**64}]},
])
def test_a_field_of_another_json_type_is_a_400_not_a_crash(raw: dict[str, object]) -> None:
    with pytest.raises(LimitError) as caught:
        parse_limits(raw)
    assert caught.value.status == 400


class _EveryProviderLimited:
    """Facts in which every catalog provider has limits, and nothing else does."""

    def key_limits(self, key_id: str) -> None:
        return None

    def workspace_limits(self, workspace_id: str) -> None:
        return None

    def provider_limits(self, slug: str) -> object:
        return object()

    def price(self, slug: str | None, model: str | None) -> None:
        return None


@pytest.mark.parametrize(("headers", "model", "config", "reached"), [
    # The header's provider serves, as routing picks it: the model's "@pb/" was charged instead (another
    # workspace's provider, never sent to).
    ({"x-portkey-provider": "@pa"}, "@pb/m1", None, "pa"),
    ({"x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9/v1"}, "@pb/m1", None, None),
    ({}, "@pb/m1", None, "pb"),  # no provider besides the model's: the model's serves
    ({}, "@pb/m1", {"provider": "@pa"}, "pa"),  # a config's target names its own
    ({"x-portkey-provider": "@pa"}, "m1", {"retry": {"attempts": 1}}, "pa"),  # a target without one: the header's
])
def test_the_limits_are_those_of_the_provider_routing_reaches(headers, model, config, reached) -> None:
    from sluicegate.pipeline import RequestState
    from sluicegate.pipeline.limit import LimitStep
    from tests.inprocess import call
    from tests.inprocess import config as parsed

    state = RequestState(call(headers, {"model": model, "messages": [{"role": "user", "content": "hi"}]}))
    state.root = parsed(config) if config is not None else None
    subjects, slug, _ = LimitStep(None, _EveryProviderLimited()).subjects(state)  # type: ignore[arg-type]
    assert slug == reached and [s.id for s in subjects] == ([reached] if reached else [])


RPM2 = {"type": "requests", "unit": "rpm", "value": 2}
BUDGET_100 = {"type": "tokens", "credit_limit": 100, "periodic_reset": "weekly"}
LOOSER = [  # (limits, bound, what is lacking: None when they bind as tightly)
    ({}, {}, None),
    ({"rate_limits": [RPM2]}, {}, None),
    ({}, {"rate_limits": [RPM2]}, "a requests rate limit of at most 2 rpm"),
    ({"rate_limits": [{**RPM2, "value": 1}]}, {"rate_limits": [RPM2]}, None),
    ({"rate_limits": [{**RPM2, "value": 3}]}, {"rate_limits": [RPM2]}, "a requests rate limit of at most 2 rpm"),
    ({"rate_limits": [{**RPM2, "unit": "rph"}]}, {"rate_limits": [RPM2]}, "a requests rate limit of at most 2 rpm"),
    ({"rate_limits": [{**RPM2, "type": "tokens"}]}, {"rate_limits": [RPM2]}, "a requests rate limit of at most 2"),
    ({"rate_limits": [RPM2, {**RPM2, "value": 9}]}, {"rate_limits": [RPM2]}, None),  # the tighter one binds
    ({"usage_limits": BUDGET_100}, {"usage_limits": BUDGET_100}, None),
    ({"usage_limits": {**BUDGET_100, "credit_limit": 100.5}}, {"usage_limits": BUDGET_100},
     "a tokens budget of at most 100 (reset weekly or less often)"),
    ({"usage_limits": {**BUDGET_100, "periodic_reset": "monthly"}}, {"usage_limits": BUDGET_100}, None),
    ({"usage_limits": {**BUDGET_100, "periodic_reset": None}}, {"usage_limits": BUDGET_100}, None),
    ({"usage_limits": {**BUDGET_100, "periodic_reset": "daily"}}, {"usage_limits": BUDGET_100},
     "a tokens budget of at most 100 (reset weekly or less often)"),
    ({"usage_limits": {**BUDGET_100, "periodic_reset": "monthly"}},
     {"usage_limits": {**BUDGET_100, "periodic_reset": None}}, "a tokens budget of at most 100 (no reset)"),
    ({"usage_limits": {**BUDGET_100, "type": "cost"}}, {"usage_limits": BUDGET_100}, "a tokens budget"),
]


@pytest.mark.parametrize(("limits", "bound", "lacking"), LOOSER)
def test_looser_part_names_what_a_key_lacks_to_bind_as_tightly(limits: dict, bound: dict, lacking: str | None) -> None:
    found = looser_part(parse_limits(limits), parse_limits(bound))
    assert found == lacking if lacking is None or found is None else found.startswith(lacking)
