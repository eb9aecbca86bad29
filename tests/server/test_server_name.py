"""Every answer names the gateway in its ``Server`` header, never the runtime or library versions behind it:
the native edge's answers and streams, aiohttp's (probes, the admin API, 404s) and its refusals of requests
it cannot parse."""

from __future__ import annotations

import httpx

from tests.fakes.upstream import Reply
from tests.rawhttp import exchange

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _named(headers: httpx.Headers) -> None:
    assert headers.get_list("server") == ["sluicegate"]
    assert not any(word in value for value in headers.values() for word in ("aiohttp", "Python"))


def test_every_kind_of_answer_names_the_gateway(gateway, upstream):
    direct = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    answered = httpx.post(f"{gateway.v1}/chat/completions", headers=direct, json=CHAT)
    assert answered.status_code == 200
    _named(answered.headers)

    upstream.push(Reply(stream=[{"choices": [{"index": 0, "delta": {"content": "hi"}}]}, "[DONE]"]))
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", headers=direct, json={**CHAT, "stream": True}) as streamed:
        assert streamed.status_code == 200 and streamed.read().endswith(b"data: [DONE]\n\n")
        _named(streamed.headers)

    refused = httpx.post(f"{gateway.v1}/chat/completions", headers=direct, content=b"{oops")  # the native edge's 400
    assert refused.status_code == 400
    _named(refused.headers)

    for url in (f"{gateway.v1}/health", f"{gateway.url}/nope", f"{gateway.url}/admin/api/providers",
                f"{gateway.url}/metrics"):
        _named(httpx.get(url).headers)


def test_a_request_aiohttp_cannot_parse_is_refused_in_the_gateways_name(gateway):
    port = int(gateway.url.rsplit(":", 1)[1])
    raw = exchange(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\nConnection: close\r\n\r\n")
    assert raw.status == 400
    head = raw.head.lower()
    assert "\r\nserver: sluicegate\r\n" in head + "\r\n" and "aiohttp" not in head and "python" not in head
