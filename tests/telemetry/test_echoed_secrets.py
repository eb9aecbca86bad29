"""Credentials an upstream echoes back, whatever their header's name and however they are encoded, are not
stored: the log scrubs every value the gateway itself sent upstream (headers by value, query parameters
with credential-like names), plus their URL-encoded and JSON-escaped forms.

Each request here carries a credential the name-based rules miss: a passthrough header with an innocuous
name, a query parameter, a header forwarded by a config's ``forward_headers``, a catalog credential
under an innocuous name that the upstream echoes percent-encoded and JSON-escaped, in its body and in
its response headers. Then every byte of the SQLite files (or a pg_dump) is searched.
"""

from __future__ import annotations

import subprocess
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

TENANT = "tenant-secret-0c9d2e71"  # x-tenant: passed through on a passthrough route
QUERY_KEY = "query-key-secret-5a17be"  # ?key= on a passthrough route
ORG_REF = "org-ref-secret-9e03aa44"  # forwarded by a config's forward_headers
CATALOG = "cat+secret/val==3f8c1d"  # a catalog header named x-goog-thing; '+', '/', '=' get encoded
PASTED = "pasted-secret-77e1b0c4"  # a header pasted into x-portkey-custom-host after the URL: refused
CLIENT = "sk-client-secret-4b8e21d0"  # the client's own key, also sent as its end user's name
TABBED = "sk-tabbed-secret-2f6a90c1"  # sent as "Bearer<TAB>token"
SECRETS = [TENANT, QUERY_KEY, ORG_REF, CATALOG, quote(CATALOG, safe=""), CATALOG.replace("/", "\\/"), PASTED,
           CLIENT]


def echoing(secret: str, upstream) -> Reply:
    """An upstream that hands the credential back: in a URL and a note in its body, in innocuous headers."""
    encoded = quote(secret, safe="")
    body = orjson.dumps({"data": [], "next": f"{upstream.v1}/models?key={encoded}&page=2", "note": f"seen {secret}",
                         "escaped": secret.replace("/", "\\/")}).replace(b"\\\\/", b"\\/")
    return Reply(body=body, content_type="application/json",
                 headers={"x-echo": secret, "link": f"<{upstream.v1}/models?key={encoded}>; rel=next"})


def send(gateway: GatewayProcess, upstream) -> list[str]:
    created = httpx.post(f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                         json={"slug": "innocuous", "spec": "openai", "custom_host": upstream.v1,
                               "headers": {"x-goog-thing": CATALOG}, "models": ["m"]})
    assert created.status_code == 201, created.text
    traces = [new_trace() for _ in range(4)]
    direct = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    upstream.push(echoing(TENANT, upstream), echoing(QUERY_KEY, upstream), echoing(ORG_REF, upstream),
                  echoing(CATALOG, upstream))
    httpx.get(f"{gateway.v1}/models", headers={**direct, "x-tenant": TENANT, "x-portkey-trace-id": traces[0]})
    httpx.get(f"{gateway.v1}/models?key={QUERY_KEY}&limit=5", headers={**direct, "x-portkey-trace-id": traces[1]})
    config = orjson.dumps({"provider": "openai", "custom_host": upstream.v1, "forward_headers": ["x-org-ref"]})
    httpx.post(f"{gateway.v1}/chat/completions", json=body,
               headers={"x-portkey-config": config.decode(), "x-org-ref": ORG_REF, "x-portkey-trace-id": traces[2]})
    httpx.post(f"{gateway.v1}/chat/completions", json={**body, "model": "@innocuous/m"},
               headers={"x-portkey-trace-id": traces[3]})
    # The guard's refusal (a URL with whitespace) was logged, and the custom host stored, with the key in it.
    refused = httpx.post(f"{gateway.v1}/chat/completions", json=body, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream.v1} Authorization: Bearer {PASTED}"})
    assert refused.status_code == 400 and PASTED not in refused.text, refused.text
    received = upstream.received[-4:]
    assert received[0].headers["x-tenant"] == TENANT and f"key={QUERY_KEY}" in received[1].query
    assert received[2].headers["x-org-ref"] == ORG_REF and received[3].headers["x-goog-thing"] == CATALOG
    api = LogApi(gateway.url)
    stored = [api.one(trace) for trace in traces]
    assert all("[REDACTED]" in record["response_body"] for record in stored), stored  # stored, scrubbed
    return traces + echoed_elsewhere(gateway, upstream, body)


def echoed_elsewhere(gateway: GatewayProcess, upstream, body: dict) -> list[str]:
    """The catalog credential echoed as the answering model and as an error's type (neither was scrubbed in
    the log, and the error reached the client), and the client's key sent as its end user's name."""
    traces = [new_trace() for _ in range(3)]
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": f"m-{CATALOG}",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    upstream.push(Reply(json=answer),
                  Reply(status=401, json={"error": {"type": f"bad_{CATALOG}", "message": f"bad key {CATALOG}"}},
                        headers={"x-echo": CATALOG}))
    catalog = {**body, "model": "@innocuous/m"}
    assert httpx.post(f"{gateway.v1}/chat/completions", json=catalog,
                      headers={"x-portkey-trace-id": traces[0]}).status_code == 200
    refused = httpx.post(f"{gateway.v1}/chat/completions", json=catalog, headers={"x-portkey-trace-id": traces[1]})
    assert refused.status_code == 401 and CATALOG not in refused.text, refused.text
    assert "[REDACTED]" in refused.text and CATALOG not in str(refused.headers), refused.headers
    direct = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
              "authorization": f"Bearer {CLIENT}", "x-portkey-trace-id": traces[2]}
    assert httpx.post(f"{gateway.v1}/chat/completions", json={**body, "user": CLIENT, "model": CLIENT},
                      headers=direct).status_code == 200
    assert CLIENT not in httpx.get(f"{gateway.url}/metrics").text  # the model was a label there, in clear
    api = LogApi(gateway.url)
    answered, failed, user = (api.one(trace) for trace in traces)
    assert answered["model_answered"] == "m-[REDACTED]", answered
    assert failed["error"]["type"] == "bad_[REDACTED]", failed
    assert user["user"] == "[REDACTED]", user
    return traces


def leaked(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


def test_sqlite_holds_no_echoed_credential(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        send(gateway, upstream)
    finally:
        gateway.stop()
    for path in (tmp_path / "data").rglob("sluicegate.db*"):
        assert not leaked(path.read_bytes()), path
    assert not leaked(gateway.log().encode())


def test_a_tab_after_bearer_separates_the_token(tmp_path, upstream):
    """``Authorization: Bearer<TAB>token`` (RFC 9110 wants a space; clients send a tab too): the tab was taken
    as part of the scheme, so the model server got ``Bearer Bearer<TAB>token`` and the token alone was no
    secret to the log, which stored an upstream's echo of it in clear."""
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        trace = new_trace()
        upstream.push(Reply(status=401, json={"error": {"message": f"Incorrect API key provided: {TABBED}"}}))
        answer = httpx.post(f"{gateway.v1}/chat/completions", json={"model": "m", "messages": [{"role": "user",
                            "content": "hi"}]}, headers={"x-portkey-provider": "openai",
                            "x-portkey-custom-host": upstream.v1, "authorization": f"Bearer\t{TABBED}",
                            "x-portkey-trace-id": trace})
        assert answer.status_code == 401, answer.text
        assert upstream.received[-1].headers["authorization"] == f"Bearer {TABBED}"
        stored = LogApi(gateway.url).one(trace)
        assert "[REDACTED]" in stored["response_body"], stored  # the echo was stored, scrubbed
    finally:
        gateway.stop()
    for path in (tmp_path / "data").rglob("sluicegate.db*"):
        assert TABBED.encode() not in path.read_bytes(), path


@pytest.mark.postgres
def test_a_pg_dump_holds_no_echoed_credential(tmp_path, upstream, pg_url):
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_DATABASE_URL": pg_url}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        send(gateway, upstream)
    finally:
        gateway.stop()
    url = make_url(pg_url)
    dump = subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                           "-U", url.username or "postgres", "--data-only", url.database],
                          check=True, capture_output=True, timeout=60).stdout
    assert b"request_logs" in dump
    assert not leaked(dump)


STORED = "sk-STORED-mid-stream-5e2a91c4"  # a catalog provider's x-api-key, echoed in an error mid-stream


def anthropic_event(event: dict) -> bytes:
    return f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n"


def mid_stream_errors(split: bool, mark_last: bool = False) -> tuple[list[bytes], list[bytes]]:
    """An Anthropic and an OpenAI stream that start, then send an error event echoing the stored key: whole,
    or cut in two inside the key (two reads); ``mark_last``: the key comes before what says the event is an
    error (the OpenAI error's "error" key after a "detail", the Anthropic one's "type" last and no name line)."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "x", "content": [],
               "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}
    anthropic = [anthropic_event({"type": "message_start", "message": message}),
                 anthropic_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                  "text": ""}}),
                 anthropic_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                  "text": "hi"}}),
                 anthropic_event({"type": "error", "error": {"type": "authentication_error",
                                                             "message": f"bad key {STORED}"}})]
    chat = [b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x",
                                      "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]})
            + b"\n\n", b"data: " + orjson.dumps({"error": {"message": f"bad key {STORED}"}}) + b"\n\n"]
    if mark_last:
        anthropic[-1] = b"data: " + orjson.dumps({"error": {"type": "authentication_error",
                                                            "message": f"bad key {STORED}"}, "type": "error"}) + b"\n\n"
        chat[-1] = b"data: " + orjson.dumps({"detail": f"bad key {STORED}",
                                             "error": {"message": f"bad key {STORED}"}}) + b"\n\n"
    if split:
        for events in (anthropic, chat):
            at = events[-1].index(STORED.encode()) + 6
            events[-1:] = [events[-1][:at], events[-1][at:]]
    return anthropic, chat


@pytest.mark.parametrize(("split", "mark_last"), [(False, False), (True, False), (True, True)],
                         ids=["whole", "in-two-reads", "key-read-before-the-error-mark"])
def test_an_error_event_after_the_start_hides_the_catalog_credential(tmp_path, upstream, split, mark_last):
    """An upstream that echoes the stored credential in an error event once its stream has started: the
    client got the key in clear, on the relayed streams (the Anthropic relay, the OpenAI relay) as on the
    translated ones, though the same error answered before the stream was scrubbed; and, on the relayed
    ones, when the read with the key came before the one that said the event was an error."""
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        for slug, spec in (("claude-like", "anthropic"), ("gpt-like", "openai")):
            created = httpx.post(f"{gateway.url}/admin/api/providers",
                                 headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                                 json={"slug": slug, "spec": spec, "custom_host": upstream.v1,
                                       "headers": {"x-api-key": STORED}})
            assert created.status_code == 201, created.text
        anthropic, chat = mid_stream_errors(split, mark_last)
        interval = 0.05 if split else 0.0
        asked = [("/messages", "claude-like", anthropic), ("/chat/completions", "claude-like", anthropic),
                 ("/chat/completions", "gpt-like", chat), ("/messages", "gpt-like", chat)]
        for path, slug, events in asked:
            upstream.push(Reply(stream=events, chunk_interval=interval))
            body = {"model": f"@{slug}/x", "max_tokens": 16, "stream": True,
                    "messages": [{"role": "user", "content": "hi"}]}
            with httpx.stream("POST", f"{gateway.v1}{path}", json=body) as response:
                received = response.read()
            assert upstream.received[-1].headers["x-api-key"] == STORED
            assert response.status_code == 200 and b"hi" in received, (path, slug, received)
            assert STORED.encode() not in received and STORED[:12].encode() not in received, (path, slug, received)
            assert b"[REDACTED]" in received, (path, slug, received)  # the error event itself came through
    finally:
        gateway.stop()
    assert STORED not in gateway.log()


QUOTED = 'cat"quoted\\secret-6d21e9'  # a catalog credential with a quote and a backslash in it


def test_a_credential_echoed_inside_a_quoted_json_answer_is_not_stored(tmp_path, upstream):
    """An upstream that relays its own upstream's JSON answer as a string: the credential in it is escaped twice
    (\\\" and \\\\), a form the log did not scrub, and the SQLite file held it in clear."""
    from openai import OpenAI

    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    twice = orjson.dumps(orjson.dumps(QUOTED).decode()[1:-1]).decode()[1:-1]
    try:
        created = httpx.post(f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"slug": "quoted", "spec": "openai", "custom_host": upstream.v1,
                                   "headers": {"x-goog-thing": QUOTED}, "models": ["m"]})
        assert created.status_code == 201, created.text
        relayed = orjson.dumps({"seen": QUOTED}).decode()  # its upstream's JSON, as a string of this answer
        answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "system_fingerprint": relayed,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        upstream.push(Reply(json=answer))
        trace = new_trace()
        client = OpenAI(base_url=gateway.v1, api_key="unused", default_headers={"x-portkey-trace-id": trace})
        completion = client.chat.completions.create(model="@quoted/m", messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content == "hi"
        assert upstream.received[-1].headers["x-goog-thing"] == QUOTED
        stored = LogApi(gateway.url).one(trace)
        assert twice in orjson.dumps(answer).decode() and "[REDACTED]" in stored["response_body"], stored
    finally:
        gateway.stop()
    for path in (tmp_path / "data").rglob("sluicegate.db*"):
        blob = path.read_bytes()
        assert twice.encode() not in blob and b"quoted\\\\secret" not in blob, path
