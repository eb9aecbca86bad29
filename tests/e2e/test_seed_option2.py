"""The seed's Option 2 snippets ("Direct Integration Without Model Catalog"), only the base URL changed.

Driven through the real portkey-ai and openai SDKs and raw HTTP against a real gateway process and a
scripted upstream on loopback.
"""

from __future__ import annotations

import httpx
import openai
import pytest
from portkey_ai import AsyncPortkey, Portkey

PROMPT = "Explain quantum computing in simple terms"


def _no_portkey_headers_upstream(received) -> None:
    assert not [name for name in received.headers if name.lower().startswith("x-portkey-")]


def test_python_sdk_snippet(gateway, upstream):
    portkey = Portkey(
        api_key="PORTKEY_API_KEY",
        base_url=gateway.v1,
        provider="openai",
        custom_host=upstream.v1 + "/",  # the seed writes the host with a trailing slash
        Authorization="Bearer YOUR_AUTH_TOKEN",
        forward_headers=["Authorization"],
    )
    response = portkey.chat.completions.create(
        model="YOUR_MODEL_NAME", messages=[{"role": "user", "content": PROMPT}]
    )
    assert response.choices[0].message.content == f"echo: {PROMPT}"
    received = upstream.last
    assert received.path == "/v1/chat/completions"
    assert received.headers["Authorization"] == "Bearer YOUR_AUTH_TOKEN"
    assert received.json()["model"] == "YOUR_MODEL_NAME"
    _no_portkey_headers_upstream(received)


def test_curl_snippet(gateway, upstream):
    response = httpx.post(
        f"{gateway.v1}/chat/completions",
        headers={
            "Content-Type": "application/json",
            "x-portkey-api-key": "PORTKEY_API_KEY",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream.v1,
            "Authorization": "Bearer YOUR_AUTH_TOKEN",
            "x-portkey-forward-headers": "Authorization",
        },
        json={"model": "YOUR_MODEL_NAME", "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == f"echo: {PROMPT}"
    assert upstream.last.headers["Authorization"] == "Bearer YOUR_AUTH_TOKEN"


def test_sensitive_forward_headers_python_sdk(gateway, upstream):
    portkey = Portkey(
        api_key="PORTKEY_API_KEY",
        base_url=gateway.v1,
        provider="openai",
        custom_host=upstream.v1 + "/",
        Authorization="Bearer sk_live_xxxxx",
        x_api_key="sensitive-key-value",
        x_org_id="org-12345",
        forward_headers=["Authorization", "x_api_key", "x_org_id"],
    )
    portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hello!"}])
    headers = {k.lower(): v for k, v in upstream.last.headers.items()}
    assert headers["authorization"] == "Bearer sk_live_xxxxx"
    assert headers["x-api-key"] == "sensitive-key-value"
    assert headers["x-org-id"] == "org-12345"
    _no_portkey_headers_upstream(upstream.last)


def test_sensitive_forward_headers_curl(gateway, upstream):
    response = httpx.post(
        f"{gateway.v1}/chat/completions",
        headers={
            "Content-Type": "application/json",
            "x-portkey-api-key": "PORTKEY_API_KEY",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream.v1,
            "Authorization": "Bearer sk_live_xxxxx",
            "x-api-key": "sensitive-key-value",
            "x-org-id": "org-12345",
            "x-portkey-forward-headers": "Authorization, x-api-key, x-org-id",
        },
        json={"model": "YOUR_MODEL_NAME", "messages": [{"role": "user", "content": "Hello!"}]},
    )
    assert response.status_code == 200
    headers = {k.lower(): v for k, v in upstream.last.headers.items()}
    assert (headers["authorization"], headers["x-api-key"], headers["x-org-id"]) == (
        "Bearer sk_live_xxxxx", "sensitive-key-value", "org-12345",
    )


def test_unforwarded_headers_stay_behind(gateway, upstream):
    """Without forward-headers only the credential travels: other client headers do not."""
    httpx.post(
        f"{gateway.v1}/chat/completions",
        headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
                 "Authorization": "Bearer k1", "x-org-id": "org-12345", "cookie": "session=1"},
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    headers = {k.lower(): v for k, v in upstream.last.headers.items()}
    assert headers["authorization"] == "Bearer k1"
    assert "x-org-id" not in headers and "cookie" not in headers


def test_openai_sdk_with_default_headers(gateway, upstream):
    client = openai.OpenAI(
        api_key="upstream-token",
        base_url=gateway.v1,
        default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1},
    )
    response = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hey"}])
    assert response.choices[0].message.content == "echo: hey"
    assert upstream.last.headers["Authorization"] == "Bearer upstream-token"


def test_placeholder_credential_is_not_sent(gateway, upstream):
    """portkey-ai's inner OpenAI client sends 'Bearer OPENAI_API_KEY' when no credential was given."""
    portkey = Portkey(base_url=gateway.v1, provider="openai", custom_host=upstream.v1)
    portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert "authorization" not in {k.lower() for k in upstream.last.headers}


async def test_async_sdks(gateway, upstream):
    portkey = AsyncPortkey(base_url=gateway.v1, provider="openai", custom_host=upstream.v1)
    response = await portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    assert response.choices[0].message.content == "echo: a"
    client = openai.AsyncOpenAI(
        api_key="k", base_url=gateway.v1,
        default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1},
    )
    response = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    assert response.choices[0].message.content == "echo: b"


@pytest.mark.parametrize("sdk", ["portkey", "openai"])
def test_streaming_sync(gateway, upstream, sdk):
    if sdk == "portkey":
        client = Portkey(base_url=gateway.v1, provider="openai", custom_host=upstream.v1)
    else:
        client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers={
            "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
    stream = client.chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": "one two three"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "echo: one two three "


async def test_streaming_async(gateway, upstream):
    client = AsyncPortkey(base_url=gateway.v1, provider="openai", custom_host=upstream.v1)
    stream = await client.chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": "four five"}]
    )
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(parts) == "echo: four five "
