"""Wire behaviour of the direct integration: endpoints, pass-through, headers, upstream failures."""

from __future__ import annotations

import gzip
import socket
import time

import httpx
import openai
import orjson
import pytest

from tests.fakes.upstream import Reply, chat_chunks


def direct(upstream, **extra) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1, **extra}


def post(gateway, path, upstream, body, **headers) -> httpx.Response:
    return httpx.post(f"{gateway.v1}{path}", headers=direct(upstream, **headers), json=body, timeout=30)


def test_unknown_parameters_reach_the_model_and_unknown_fields_reach_the_client(gateway, upstream):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": 20,
            "chat_template_kwargs": {"enable_thinking": False}, "repetition_penalty": 1.1}
    response = post(gateway, "/chat/completions", upstream, body)
    assert response.status_code == 200
    assert upstream.last.json() == body  # untouched, byte for byte in meaning
    assert response.json()["system_fingerprint"] == "fake-upstream"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/completions", {"model": "m", "prompt": "hi"}), ("/embeddings", {"model": "e", "input": ["a", "b"]})],
)
def test_completions_and_embeddings(gateway, upstream, path, body):
    upstream.push(Reply(json={"object": "list", "data": [{"embedding": [0.1]}], "echo": path}))
    response = post(gateway, path, upstream, body)
    assert response.status_code == 200 and response.json()["echo"] == path
    assert upstream.last.path == f"/v1{path}" and upstream.last.json() == body


def test_embeddings_through_the_openai_sdk(gateway, upstream):
    upstream.push(Reply(json={"object": "list", "model": "e", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                              "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]}))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream))
    result = client.embeddings.create(model="e", input="hello", encoding_format="float")
    assert result.data[0].embedding == [0.5, 0.25]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_passthrough_keeps_path_query_method_and_headers(gateway, upstream, method):
    body = b'{"query": "q", "documents": ["a"]}' if method in ("POST", "PUT") else None
    response = httpx.request(
        method, f"{gateway.v1}/rerank?top_n=2&x=a%20b",
        headers=direct(upstream, **{"content-type": "application/json", "x-custom": "yes",
                                    "authorization": "Bearer pass"}),
        content=body,
    )
    assert response.status_code == 200, response.text
    received = upstream.last
    assert (received.method, received.path, received.query) == (method, "/v1/rerank", "top_n=2&x=a%20b")
    assert received.headers["x-custom"] == "yes"
    assert received.headers["authorization"] == "Bearer pass"
    assert received.body == (body or b"")
    assert not [h for h in received.headers if h.lower().startswith("x-portkey-")]


@pytest.mark.parametrize("forward", [False, True])
def test_a_compressed_passthrough_body_goes_up_decoded_and_unlabelled(gateway, upstream, forward):
    """The gateway decodes request bodies: a relayed Content-Encoding: gzip mislabelled the plain bytes."""
    body = b'{"model": "m",   "query": "q"}'
    headers = direct(upstream, **{"content-type": "application/json", "content-encoding": "gzip"})
    if forward:  # asking to forward it is refused: it could only mislabel the body
        headers["x-portkey-forward-headers"] = "content-encoding"
    response = httpx.post(f"{gateway.v1}/rerank", headers=headers, content=gzip.compress(body), timeout=30)
    if forward:
        assert response.status_code == 400
        assert "the 'content-encoding' header cannot be forwarded" in response.text
        return
    assert response.status_code == 200, response.text
    assert "content-encoding" not in upstream.last.headers and upstream.last.body == body


def test_headers_a_connection_header_names_stay_on_their_hop(gateway, upstream):
    """RFC 9110 7.6.1: a header the Connection header lists belongs to that hop, in either direction."""
    upstream.push(Reply(json={"ok": True}, headers={"connection": "keep-alive, x-upstream-hop",
                                                    "x-upstream-hop": "s", "x-kept": "k"}))
    response = httpx.post(f"{gateway.v1}/rerank", content=b"{}", timeout=30, headers=direct(upstream, **{
        "content-type": "application/json", "connection": "keep-alive, X-Client-Hop", "x-client-hop": "1",
        "x-custom": "yes"}))
    assert response.status_code == 200, response.text
    assert "x-client-hop" not in upstream.last.headers and upstream.last.headers["x-custom"] == "yes"
    assert "x-upstream-hop" not in response.headers and response.headers["x-kept"] == "k"


def test_models_listing_is_passed_through(gateway, upstream):
    upstream.push(Reply(json={"object": "list", "data": [{"id": "smol", "object": "model"}]}))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream))
    assert [m.id for m in client.models.list()] == ["smol"]
    assert upstream.last.path == "/v1/models"


def test_response_headers(gateway, upstream):
    upstream.push(Reply(json={"ok": True}, headers={"x-request-id": "up-1", "x-ratelimit-remaining": "9",
                                                    "x-portkey-spoof": "no"}))
    response = post(gateway, "/chat/completions", upstream, {"messages": [{"role": "user", "content": "x"}]},
                    **{"x-portkey-trace-id": "trace-42"})
    h = response.headers
    assert h["x-portkey-trace-id"] == "trace-42"
    assert h["x-portkey-provider"] == "openai"
    assert h["x-portkey-last-used-option-index"] == "config"
    assert h["x-portkey-retry-attempt-count"] == "0"
    assert h["x-portkey-cache-status"] == "DISABLED"
    assert h["x-request-id"] == "up-1" and h["x-ratelimit-remaining"] == "9"
    assert "x-portkey-spoof" not in h


def test_trace_id_is_generated_when_absent_and_echoed_on_errors(gateway, upstream):
    ok = post(gateway, "/chat/completions", upstream, {"messages": [{"role": "user", "content": "x"}]})
    refused = httpx.post(f"{gateway.v1}/chat/completions", json={"messages": []},
                         headers={"x-portkey-trace-id": "t-err"})
    assert len(ok.headers["x-portkey-trace-id"]) >= 16
    assert refused.status_code == 400 and refused.headers["x-portkey-trace-id"] == "t-err"


def test_upstream_error_is_relayed_with_its_status_in_the_unified_envelope(gateway, upstream):
    upstream.push(Reply(status=401, json={"error": {"message": "bad key", "type": "auth", "code": "invalid_api_key"}}))
    response = post(gateway, "/chat/completions", upstream, {"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "openai error: bad key", "type": "auth", "param": None, "code": "invalid_api_key"},
        "provider": "openai",
    }


def test_upstream_non_json_error(gateway, upstream):
    upstream.push(Reply(status=503, body=b"<html>overloaded</html>", content_type="text/html"))
    response = post(gateway, "/chat/completions", upstream, {"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "openai error: <html>overloaded</html>"


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def test_connection_refused_names_the_host_not_the_credential(gateway):
    host = f"http://127.0.0.1:{_dead_port()}/v1"
    response = httpx.post(
        f"{gateway.v1}/chat/completions",
        headers={"x-portkey-provider": "openai", "x-portkey-custom-host": host,
                 "authorization": "Bearer sk-secret-123"},
        json={"messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert host in error["message"] and error["type"] == "upstream_connection_error"
    assert "sk-secret-123" not in response.text


def test_request_timeout_gives_408(gateway, upstream):
    upstream.push(Reply(delay=2.0))
    started = time.monotonic()
    response = post(gateway, "/chat/completions", upstream, {"messages": [{"role": "user", "content": "x"}]},
                    **{"x-portkey-request-timeout": "300"})
    assert time.monotonic() - started < 1.5
    assert response.status_code == 408
    assert response.json()["error"] == {
        "message": "Request exceeded the timeout sent in the request: 300ms",
        "type": "timeout_error", "param": None, "code": None,
    }
    assert response.headers["x-should-retry"] == "false"


def test_a_request_whose_own_timeout_fired_is_not_retried_by_the_sdk(gateway, upstream):
    """The openai SDK retries a 408 twice by default: each retry would wait out the request's timeout again,
    past the deadline the client set."""
    upstream.push(Reply(delay=2.0), Reply(delay=2.0), Reply(delay=2.0))
    client = openai.OpenAI(base_url=gateway.v1, api_key="sk-x", timeout=30,
                           default_headers=direct(upstream, **{"x-portkey-request-timeout": "300"}))
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 408
    assert len(upstream.received) == 1


def _slow_then_fast(gateway, upstream, config: dict) -> tuple[httpx.Response, int]:
    """Every attempt to the slow target outlasts the 200 ms request timeout; the fast one answers."""
    upstream.push(Reply(delay=0.6), Reply(delay=0.6), Reply(delay=0.6))
    slow = {"provider": "openai", "api_key": "k", "custom_host": upstream.v1, "request_timeout": 200}
    fast = {"provider": "openai", "api_key": "k", "custom_host": upstream.v1.replace("/v1", "/fast/v1")}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    targets = [{**slow, **config.get("slow", {})}, fast]
    whole = {"strategy": {"mode": "fallback", **config.get("strategy", {})}, "targets": targets}
    response = httpx.post(f"{gateway.v1}/chat/completions", json=body, timeout=30,
                          headers={"x-portkey-config": orjson.dumps(whole).decode()})
    return response, sum(1 for r in upstream.received if "/fast/" not in r.path)


@pytest.mark.parametrize(("config", "status", "slow_calls", "retries"), [
    # The timeout's 408 is judged by the status lists like any answer (Portkey): not a default retry code,
    ({"slow": {"retry": {"attempts": 2}}}, 200, 1, "0"),
    # retried when the list names it,
    ({"slow": {"retry": {"attempts": 1, "on_status_codes": [408]}}}, 200, 2, "0"),
    # and a fallback whose list leaves it out answers it rather than moving on.
    ({"strategy": {"on_status_codes": [429]}}, 408, 1, "0"),
    ({"strategy": {"on_status_codes": [408]}}, 200, 1, "0"),
])
def test_a_request_timeout_is_judged_by_the_status_lists(gateway, upstream, config, status, slow_calls, retries):
    response, calls = _slow_then_fast(gateway, upstream, config)
    assert (response.status_code, calls) == (status, slow_calls), response.text
    assert response.headers["x-portkey-retry-attempt-count"] == retries


def test_timeout_does_not_cut_a_stream_that_started(gateway, upstream):
    upstream.push(Reply(stream=chat_chunks("a b c d e"), chunk_interval=0.1))
    response = post(gateway, "/chat/completions", upstream,
                    {"stream": True, "messages": [{"role": "user", "content": "x"}]},
                    **{"x-portkey-request-timeout": "250"})
    assert response.status_code == 200
    assert response.text.rstrip().endswith("data: [DONE]")


def test_stream_is_relayed_intact_with_done(gateway, upstream):
    chunks = chat_chunks("alpha beta gamma")
    upstream.push(Reply(stream=chunks))
    response = post(gateway, "/chat/completions", upstream,
                    {"stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert len(events) == len(chunks)
    assert [orjson.loads(e[6:]) for e in events[:-1]] == chunks[:-1]
    assert events[-1] == "data: [DONE]"


def test_stream_dropped_mid_way_ends_with_an_error_event(gateway, upstream):
    upstream.push(Reply(stream=chat_chunks("one two three four"), drop_after=3))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream), max_retries=0)
    stream = client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "x"}])
    seen = []
    with pytest.raises(openai.APIError, match="upstream"):
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen  # content arrived before the break, then the client was told


def test_stream_that_errors_before_content_is_an_error_response(gateway, upstream):
    upstream.push(Reply(stream=[{"error": {"message": "model overloaded"}}]))
    response = post(gateway, "/chat/completions", upstream,
                    {"stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 502
    assert "model overloaded" in response.json()["error"]["message"]


def test_a_stream_s_error_before_content_keeps_the_upstream_s_type_and_code(gateway, upstream):
    """A stream whose first event is an error naming its status is answered as the same error answered as
    JSON: it was a 503 of type "upstream_error" and code null, the upstream's type and code lost."""
    error = {"error": {"message": "overloaded", "type": "server_error", "code": 503}}
    upstream.push(Reply(stream=[error]), Reply(status=503, json=error))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream), max_retries=0)
    answers = []
    for stream in (True, False):
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=stream)
        answers.append(raised.value)
    streamed, answered = answers
    assert streamed.status_code == 503 and streamed.type == "server_error", streamed.body
    assert streamed.body == {"message": "openai error: overloaded", "type": "server_error", "param": None,
                             "code": 503}
    assert streamed.body == answered.body


def test_client_disconnect_cancels_the_upstream_stream(gateway, upstream):
    upstream.push(Reply(stream=chat_chunks(" ".join(["w"] * 200)), chunk_interval=0.05))
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", headers=direct(upstream),
                      json={"stream": True, "messages": [{"role": "user", "content": "x"}]}) as response:
        for _ in response.iter_bytes():
            break  # take the first bytes, then hang up
    deadline = time.monotonic() + 5
    while upstream.aborted_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.aborted_streams == 1


def _responses_events(*deltas: str) -> list[bytes]:
    """An OpenAI Responses API stream: named events without ``choices``, ended by response.completed (no [DONE])."""
    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "m",
                "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    events = [("response.created", {"type": "response.created", "sequence_number": 0, "response": response})]
    for number, delta in enumerate(deltas, 1):
        events.append(("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": number, "item_id": "msg_1",
            "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []}))
    events.append(("response.completed", {"type": "response.completed", "sequence_number": len(deltas) + 1,
                                          "response": {**response, "status": "completed"}}))
    return [b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n" for name, data in events]


def test_a_responses_api_stream_is_relayed_through_the_passthrough(gateway, upstream):
    """/v1/responses with stream=True (the OpenAI Agents SDK's call) was held back for want of a chat chunk
    with content, then failed as a 502 'stream ended before any content'."""
    upstream.push(Reply(stream=_responses_events("Hel", "lo")))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream), max_retries=0)
    events = list(client.responses.create(model="m", input="hi", stream=True))
    assert [event.type for event in events] == ["response.created", "response.output_text.delta",
                                                "response.output_text.delta", "response.completed"]
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == "Hello"
    assert upstream.last.path == "/v1/responses"


def test_a_responses_api_stream_dropped_mid_way_ends_with_an_error_event(gateway, upstream):
    upstream.push(Reply(stream=_responses_events("one", "two", "three"), drop_after=2))
    client = openai.OpenAI(api_key="k", base_url=gateway.v1, default_headers=direct(upstream), max_retries=0)
    seen = []
    with pytest.raises(openai.APIError, match="upstream"):
        for event in client.responses.create(model="m", input="hi", stream=True):
            seen.append(event.type)
    assert seen == ["response.created", "response.output_text.delta"]


def test_a_responses_api_error_event_before_the_start_keeps_its_message_and_status(gateway, upstream):
    """The Responses API's error event holds its fields at the top ({"type": "error", "code", "message"}), not
    under "error": a stream that began with one was answered 502 'upstream stream error', its message lost."""
    error = {"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached for m", "param": None,
             "sequence_number": 0}
    upstream.push(Reply(stream=[b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"]))
    response = post(gateway, "/responses", upstream, {"model": "m", "input": "hi", "stream": True})
    assert response.status_code == 429, response.text
    assert response.json()["error"]["message"] == "openai error: Rate limit reached for m"
