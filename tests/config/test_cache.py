"""ConfigCache: one parse per distinct text, failures cached, bounded, owned by whoever builds it."""

from __future__ import annotations

import json

import pytest

from sluicegate.config import ConfigCache
from sluicegate.errors import BadRequest, ConfigError
from tests.config.helpers import PROVIDERS


class CountingHostCheck:
    """Counts parses: every parse of a config with a custom_host calls check_host exactly once."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, url: str) -> None:
        self.calls += 1


def config_text(n: int) -> str:
    return json.dumps({"provider": "openai", "custom_host": f"http://h{n}/v1"})


def test_the_same_text_is_parsed_once_and_the_same_object_returned():
    check = CountingHostCheck()
    cache = ConfigCache(known_providers=PROVIDERS, check_host=check)
    first = cache.get(config_text(1))
    assert cache.get(config_text(1)) is first
    assert check.calls == 1


def test_schema_failures_are_cached_and_raised_fresh_each_time():
    check = CountingHostCheck()
    cache = ConfigCache(known_providers=PROVIDERS, check_host=check)
    text = json.dumps({"provider": "nope", "custom_host": "http://h/v1"})
    with pytest.raises(ConfigError) as one:
        cache.get(text)
    with pytest.raises(ConfigError) as two:
        cache.get(text)
    assert check.calls == 1
    assert one.value is not two.value
    assert one.value.body() == two.value.body()
    assert two.value.errors[0].startswith("path: provider, message: Invalid 'provider' value.")


def test_not_json_failures_are_cached_as_plain_bad_requests():
    cache = ConfigCache(known_providers=PROVIDERS)
    for _ in range(2):
        with pytest.raises(BadRequest) as info:
            cache.get("pc-abc")
        assert not isinstance(info.value, ConfigError)
        assert info.value.message == "Invalid config passed. You need to pass a valid json"
    assert len(cache) == 1


def test_least_recently_used_entry_is_evicted_first():
    check = CountingHostCheck()
    cache = ConfigCache(known_providers=PROVIDERS, check_host=check, maxsize=2)
    cache.get(config_text(1))
    cache.get(config_text(2))
    cache.get(config_text(1))  # refreshes 1, so 2 is now the oldest
    cache.get(config_text(3))  # evicts 2
    assert len(cache) == 2 and check.calls == 3
    cache.get(config_text(1))
    assert check.calls == 3
    cache.get(config_text(2))
    assert check.calls == 4


def test_oversized_texts_are_parsed_but_not_kept():
    check = CountingHostCheck()
    cache = ConfigCache(known_providers=PROVIDERS, check_host=check, max_text_chars=20)
    cache.get(config_text(1))
    cache.get(config_text(1))
    assert len(cache) == 0 and check.calls == 2


def test_clear_forgets_everything():
    cache = ConfigCache(known_providers=PROVIDERS)
    cache.get(config_text(1))
    cache.clear()
    assert len(cache) == 0


def test_two_caches_do_not_share_state():
    a = ConfigCache(known_providers=PROVIDERS)
    b = ConfigCache(known_providers=PROVIDERS)
    a.get(config_text(1))
    assert (len(a), len(b)) == (1, 0)
