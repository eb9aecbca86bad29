"""Limits set and felt through the real SDKs: the portkey-ai Admin API (``api_keys.create`` /
``update`` with Portkey's ``rate_limits`` and ``usage_limits``), then the openai SDK sees a
``RateLimitError`` (429) and a 412 as the gateway sent them."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayProcess:
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


def test_portkey_admin_sdk_sets_limits_and_the_openai_sdk_feels_them(gateway: GatewayProcess, upstream) -> None:
    admin = Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)
    created = admin.api_keys.create(type="organisation", sub_type="service", name="sdk", scopes=["completions.write"],
                                    rate_limits=[{"type": "requests", "unit": "rpm", "value": 2}])
    shown = admin.api_keys.retrieve(id=created.id).model_dump()
    assert shown["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 2}]
    client = openai.OpenAI(api_key=created.key, base_url=gateway.v1, max_retries=0,
                           default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
    for _ in range(2):
        client.chat.completions.create(model="m1", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m1", messages=HELLO)
    assert limited.value.response.headers["x-ratelimit-limit"] == "2"
    assert "Rate limit exceeded" in limited.value.response.json()["message"]

    admin.api_keys.update(id=created.id, rate_limits=[],
                          usage_limits={"type": "tokens", "credit_limit": 5, "alert_threshold": 4})
    with pytest.raises(openai.APIStatusError) as spent:  # a reservation of 2 + 1024 tokens cannot fit 5
        client.chat.completions.create(model="m1", messages=HELLO)
    assert spent.value.status_code == 412 and "Usage limit exhausted" in spent.value.response.json()["message"]
    assert admin.api_keys.retrieve(id=created.id).model_dump()["usage_limits"]["credit_limit"] == 5


def test_a_request_that_alone_exceeds_a_token_rate_is_not_retried(gateway: GatewayProcess, upstream) -> None:
    # It was told "retry after 60 s", and the SDK retried what no wait could admit.
    admin = Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)
    created = admin.api_keys.create(type="organisation", sub_type="service", name="tokens", scopes=["completions.write"],
                                    rate_limits=[{"type": "tokens", "unit": "rpm", "value": 500}])
    sent: list[str] = []
    counting = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = openai.OpenAI(api_key=created.key, base_url=gateway.v1, http_client=counting,  # default retries
                           default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m1", messages=HELLO, max_tokens=9000)
    message = limited.value.response.json()["message"]
    assert "500 tokens per minute, and this request alone reserves 9002: lower its max_tokens" in message
    assert "retry after" not in message and "retry-after" not in limited.value.response.headers
    assert sent == ["/v1/chat/completions"]  # once: x-should-retry: false
    # A bound written as a float (Python's json writes 1e308 so) is reserved as asked, not at the default.
    with pytest.raises(openai.RateLimitError) as huge:
        client.chat.completions.create(model="m1", messages=HELLO, max_tokens=1e308)  # type: ignore[arg-type]
    assert "this request alone reserves 1e+308: lower its max_tokens" in huge.value.response.json()["message"]
    client.chat.completions.create(model="m1", messages=HELLO, max_tokens=100)  # one that fits is admitted


def test_a_catalog_provider_made_through_the_sdk_carries_its_limits(gateway: GatewayProcess, upstream) -> None:
    admin = Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)
    integration = admin.integrations.create(ai_provider_id="openai", name="gpu integration",
                                            configurations={"custom_host": upstream.v1}, key="sk-upstream-0123456789")
    admin.providers.create(name="gpu", integration_id=integration.id, slug="gpu",
                           rate_limits={"type": "requests", "unit": "rpm", "value": 1},
                           usage_limits={"type": "tokens", "credit_limit": 100000})
    shown = admin.providers.retrieve(slug="gpu").model_dump()
    assert shown["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 1}]
    assert shown["usage_limits"]["credit_limit"] == 100000
    made = admin.api_keys.create(type="organisation", sub_type="service", name="any", scopes=["completions.write"])
    client = openai.OpenAI(api_key=made.key, base_url=gateway.v1, max_retries=0)
    client.chat.completions.create(model="@gpu/m1", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="@gpu/m1", messages=HELLO)
    assert "provider 'gpu'" in limited.value.response.json()["message"]


def test_a_fallback_config_through_the_portkey_sdk_feels_its_second_providers_limit(
        gateway: GatewayProcess, upstream) -> None:
    """A provider's limits hold for every attempt that reaches it: here as the fallback target of a config
    the portkey-ai SDK sends, the first target being a port where nothing listens."""
    from tests.limits.conftest import free_port

    admin = Portkey(api_key=ADMIN_TOKEN, base_url=gateway.v1)
    for slug, host in (("dead", f"http://127.0.0.1:{free_port()}/v1"), ("spare", upstream.v1)):
        integration = admin.integrations.create(ai_provider_id="openai", name=f"{slug} integration",
                                                configurations={"custom_host": host}, key="sk-upstream-0123456789")
        limits = {"rate_limits": {"type": "requests", "unit": "rpm", "value": 2}} if slug == "spare" else {}
        admin.providers.create(name=slug, integration_id=integration.id, slug=slug, **limits)
    made = admin.api_keys.create(type="organisation", sub_type="service", name="cfg", scopes=["completions.write"])
    client = Portkey(api_key=made.key, base_url=gateway.v1, max_retries=0,
                     config={"strategy": {"mode": "fallback"}, "targets": [{"provider": "@dead"}, {"provider": "@spare"}]})
    for _ in range(2):
        assert client.chat.completions.create(model="m1", messages=HELLO).choices[0].message.content
    with pytest.raises(Exception) as limited:  # the SDK raises its vendored openai's classes
        client.chat.completions.create(model="m1", messages=HELLO)
    assert type(limited.value).__name__ == "RateLimitError" and limited.value.status_code == 429
    assert "provider 'spare'" in limited.value.response.json()["message"]
    assert len(upstream.received) == 2  # the third request never reached the upstream
