"""Every malformed input path answers with a clear 4xx and a JSON envelope: never a 500, never a traceback."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway import GatewayProcess

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
JSON = {"content-type": "application/json"}


def direct(upstream_url: str) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream_url, **JSON}


# (case id, path, extra headers (use "{up}" for the upstream URL), raw body, status, message substring)
CASES = [
    ("no provider or config", "/chat/completions", JSON, b'{"messages":[{"role":"user","content":"x"}]}', 400,
     "Either x-portkey-config or x-portkey-provider header is required"),
    ("unknown provider", "/chat/completions", {**JSON, "x-portkey-provider": "nope"}, CHAT, 400,
     "Invalid provider passed"),
    ("form content type", "/chat/completions", {"x-portkey-provider": "openai",
     "content-type": "application/x-www-form-urlencoded"}, b"a=b", 400, "Invalid content type passed"),
    ("text content type on passthrough", "/rerank", {"x-portkey-provider": "openai", "content-type": "text/plain"},
     b"x", 400, "Invalid content type passed"),
    ("malformed JSON", "/chat/completions", "direct", b'{"messages": [', 400, "Invalid JSON body"),
    ("empty body", "/chat/completions", "direct", b"", 400, "Request body is required"),
    ("body is a list", "/chat/completions", "direct", b"[1,2]", 400, "Request body must be a JSON object"),
    ("messages missing", "/chat/completions", "direct", b'{"model":"m"}', 400, "'messages' is required"),
    ("messages empty", "/chat/completions", "direct", b'{"messages":[]}', 400, "'messages' is required"),
    ("message not an object", "/chat/completions", "direct", b'{"messages":["hi"]}', 400,
     "each item of 'messages' must be an object"),
    ("model not a string", "/chat/completions", "direct", b'{"model":3,"messages":[{}]}', 400,
     "'model' must be a string"),
    ("stream not a boolean", "/chat/completions", "direct", b'{"stream":"yes","messages":[{}]}', 400,
     "'stream' must be a boolean"),
    ("prompt missing", "/completions", "direct", b'{"model":"m"}', 400, "'prompt' is required"),
    ("input missing", "/embeddings", "direct", b'{"model":"m"}', 400, "'input' is required"),
    ("metadata not JSON", "/chat/completions", {"x-portkey-metadata": "{oops"}, CHAT, 400,
     "Invalid x-portkey-metadata header: it must be a JSON object"),
    ("metadata not an object", "/chat/completions", {"x-portkey-metadata": "[1]"}, CHAT, 400,
     "Invalid x-portkey-metadata header: it must be a JSON object"),
    # A byte that is not UTF-8: it was told "it must be a JSON object", which it was.
    ("metadata not UTF-8", "/chat/completions", {"x-portkey-metadata": b'{"a": "\xff"}'}, CHAT, 400,
     "Invalid x-portkey-metadata header: it is not UTF-8 text"),
    ("metadata nested value", "/chat/completions", {"x-portkey-metadata": '{"a": {"b": 1}}'}, CHAT, 400,
     "value of 'a' must be a string"),
    ("metadata value too long", "/chat/completions", {"x-portkey-metadata": '{"a": "' + "x" * 129 + '"}'},
     CHAT, 400, "longer than 128 characters"),
    # A key the request log could store but never find again (?metadata.<key>=, group_by=metadata.<key>).
    ("metadata key with a NUL", "/chat/completions", {"x-portkey-metadata": '{"a\\u0000b": "x"}'}, CHAT, 400,
     "Invalid x-portkey-metadata header: the key 'a\\x00b' must be non-empty, with no control characters"),
    ("metadata key with a newline", "/chat/completions", {"x-portkey-metadata": '{"a\\nb": "x"}'}, CHAT, 400,
     "with no control characters, quotes"),
    ("metadata key with a quote", "/chat/completions", {"x-portkey-metadata": '{"a\\"": "x"}'}, CHAT, 400,
     "with no control characters, quotes"),
    ("metadata key with a backslash", "/chat/completions", {"x-portkey-metadata": '{"a\\\\b": "x"}'}, CHAT,
     400, "with no control characters, quotes"),
    ("metadata key empty", "/chat/completions", {"x-portkey-metadata": '{"": "x"}'}, CHAT, 400,
     "the key '' must be non-empty"),
    # A yes/no header takes yes or no: "maybe" was taken as true (a forced refresh the client never asked for).
    ("force refresh neither yes nor no", "/chat/completions", {"x-portkey-cache-force-refresh": "maybe"}, CHAT, 400,
     "x-portkey-cache-force-refresh takes true or false (or 1/0, yes/no, on/off), not 'maybe'"),
    ("debug neither yes nor no", "/chat/completions", {"x-portkey-debug": "verbose"}, CHAT, 400,
     "x-portkey-debug takes true or false"),
    ("strict compliance neither yes nor no", "/chat/completions", {"x-portkey-strict-open-ai-compliance": "2"},
     CHAT, 400, "x-portkey-strict-open-ai-compliance takes true or false"),
    ("timeout not a number", "/chat/completions", {"x-portkey-request-timeout": "soon"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout negative", "/chat/completions", {"x-portkey-request-timeout": "-5"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout inf", "/chat/completions", {"x-portkey-request-timeout": "inf"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout -inf", "/chat/completions", {"x-portkey-request-timeout": "-inf"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout nan", "/chat/completions", {"x-portkey-request-timeout": "nan"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 1e309", "/chat/completions", {"x-portkey-request-timeout": "1e309"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout -1e309", "/chat/completions", {"x-portkey-request-timeout": "-1e309"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 0", "/chat/completions", {"x-portkey-request-timeout": "0"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 0.5", "/chat/completions", {"x-portkey-request-timeout": "0.5"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 1e30", "/chat/completions", {"x-portkey-request-timeout": "1e30"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 2147483648", "/chat/completions", {"x-portkey-request-timeout": "2147483648"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout ", "/chat/completions", {"x-portkey-request-timeout": ""}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("timeout 0x10", "/chat/completions", {"x-portkey-request-timeout": "0x10"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    # float() reads these; no other reader of the header would
    ("timeout 1_000", "/chat/completions", {"x-portkey-request-timeout": "1_000"}, CHAT, 400,
     "Invalid x-portkey-request-timeout header"),
    ("forward headers space", "/chat/completions", {"x-portkey-forward-headers": "x-a, bad name"}, CHAT, 400,
     "x-portkey-forward-headers: Invalid header name: 'bad name'"),
    ("forward headers separator", "/chat/completions", {"x-portkey-forward-headers": "x-a/b"}, CHAT, 400,
     "x-portkey-forward-headers: Invalid header name: 'x-a/b'"),
    ("forward headers self-reference", "/chat/completions", {"x-portkey-forward-headers": "x_portkey_forward_headers"},
     CHAT, 400, "forward_headers must not contain the 'x-portkey-forward-headers' header"),
    ("forward headers host", "/chat/completions", {"x-portkey-forward-headers": "Host"}, CHAT, 400,
     "the 'host' header cannot be forwarded"),
    ("forward headers portkey", "/chat/completions", {"x-portkey-forward-headers": "x-portkey-api-key"}, CHAT, 400,
     "x-portkey-* headers are never forwarded"),
    ("forward metadata token", "/chat/completions", {"x-portkey-forward-headers": "Metadata-Flavor"}, CHAT, 400,
     "the 'metadata-flavor' header cannot be forwarded"),
    ("custom host ftp", "/chat/completions", {"x-portkey-custom-host": "ftp://127.0.0.1/v1"}, CHAT, 400,
     "Invalid custom host"),
    ("custom host garbage", "/chat/completions", {"x-portkey-custom-host": "not a url"}, CHAT, 400,
     "Invalid custom host"),
]


@pytest.mark.parametrize(("case", "path", "headers", "body", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(gateway, upstream, case, path, headers, body, status, message):
    sent = direct(upstream.v1) if headers == "direct" else {**direct(upstream.v1), **headers}
    if headers is JSON or (isinstance(headers, dict) and "x-portkey-provider" in headers):
        sent = dict(headers)
    content = body if isinstance(body, bytes) else httpx.Request("POST", "http://x", json=body).content
    response = httpx.post(f"{gateway.v1}{path}", headers=sent, content=content)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload["status"] == "failure" and message in payload["message"]
    assert "Traceback" not in response.text
    assert upstream.received == []  # refused before any upstream attempt


def test_unknown_route_is_a_json_404(gateway):
    for path in ("/nope", "/v2/chat/completions", "/admin"):
        response = httpx.get(f"{gateway.url}{path}")
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found", "ok": False}


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_wrong_method_is_a_json_405(gateway, method):
    response = httpx.request(method, f"{gateway.v1}/chat/completions")
    assert response.status_code == 405 and response.json()["status"] == "failure"


def test_get_on_an_endpoint_path_is_passthrough(gateway):
    """As in Portkey's gateway, GET /v1/* is the passthrough route: it needs a provider like any other."""
    response = httpx.get(f"{gateway.v1}/chat/completions")
    assert response.status_code == 400
    assert "x-portkey-provider" in response.json()["message"]


def test_health_and_root(gateway):
    assert httpx.get(f"{gateway.v1}/health").json() == {"status": "healthy"}
    assert httpx.get(gateway.url).status_code == 200


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("small"), env={"SLUICEGATE_MAX_BODY_BYTES": "1024"}).start()
    yield process
    process.stop()


def test_oversize_body_is_413(small_gateway, upstream):
    big = {"messages": [{"role": "user", "content": "x" * 4096}]}
    response = httpx.post(f"{small_gateway.v1}/chat/completions", headers=direct(upstream.v1), json=big)
    assert response.status_code == 413
    assert "larger than the gateway's limit of 1024 bytes" in response.json()["message"]
    chunked = httpx.post(f"{small_gateway.v1}/chat/completions", headers=direct(upstream.v1),
                         content=iter([b'{"messages": "', b"x" * 4096, b'"}']))
    assert chunked.status_code == 413
    assert upstream.received == []
