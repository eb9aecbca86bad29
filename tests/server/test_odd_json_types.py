"""No JSON a client can send is a 500: every field of a valid request body (and of a Gateway Config), given a
value of another JSON type, is served or refused with a 4xx, through a real gateway process.

The parsers compare fields against known names, look them up in sets and tables, store them and write them
back; a list where a string was expected (an unhashable value), or an integer past 64 bits, used to reach one
of those and become a 500 (a rate limit's ``unit`` and ``value``, a Messages block's ``type``). The seeds below
are valid requests on each input path; each of their leaves is replaced in turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN
from tests.mutations import fields, replaced

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Another JSON type for any field: containers (unhashable), null, integers past 64 bits (orjson reads 2^63 as an
# int, SQLite cannot store it), a float that is a whole number past JSON's exact integers, a long text, and
# lists nested 300 deep (orjson reads up to 1,024 levels but writes at most 254).
DEEP: Any = 0
for _ in range(300):
    DEEP = [DEEP]
ODD = [[], {"x": 1}, ["x"], None, 2**63, 2**64 - 1, 1e300, "a" * 3000, DEEP]
CHAT = {"model": "m", "max_tokens": 5, "stream": False, "stop": ["E"], "user": "u", "n": 1, "temperature": 0.5,
        "response_format": {"type": "json_object"}, "metadata": {"a": "b"},
        "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get"}},
        "messages": [{"role": "system", "content": "s"},
                     {"role": "user", "content": [{"type": "text", "text": "hi"},
                                                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
                     {"role": "assistant", "content": "ok", "tool_calls": [
                         {"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "42"}]}
MESSAGES = {"model": "m", "max_tokens": 5, "stream": False, "system": [{"type": "text", "text": "s"}],
            "stop_sequences": ["E"], "metadata": {"user_id": "u"}, "tool_choice": {"type": "auto"},
            "tools": [{"name": "get", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"},
                                                           {"type": "tool_use", "id": "t", "name": "get", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}]}]}
LIMITS = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}],
          "usage_limits": {"type": "cost", "credit_limit": 5, "periodic_reset": "daily", "alert_threshold": 4}}


def _config(upstream: str) -> dict[str, Any]:
    return {"strategy": {"mode": "fallback", "on_status_codes": [503]}, "request_timeout": 5000,
            "retry": {"attempts": 1, "on_status_codes": [502]}, "cache": {"mode": "simple", "max_age": 60},
            "override_params": {"temperature": 0.1},
            "targets": [{"provider": "openai", "custom_host": upstream, "weight": 1, "override_params": {"model": "m2"}},
                        {"strategy": {"mode": "loadbalance"},
                         "targets": [{"provider": "openai", "custom_host": upstream, "weight": 0.5},
                                     {"provider": "anthropic", "custom_host": upstream, "weight": 0.5}]},
                        {"strategy": {"mode": "conditional", "default": "t1",
                                      "conditions": [{"query": {"metadata.a": {"$eq": "b"}}, "then": "t1"}]},
                         "targets": [{"name": "t1", "provider": "openai", "custom_host": upstream}]}]}


def _seeds(upstream: str) -> dict[str, tuple[str, str, dict[str, str], dict[str, Any], str]]:
    """name → (method, path, headers, body, what is mutated: "body" or "config")."""
    direct = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream, "authorization": "Bearer sk-test-aaaa"}
    return {
        "chat": ("POST", "/v1/chat/completions", direct, CHAT, "body"),
        "messages over chat": ("POST", "/v1/messages", direct, MESSAGES, "body"),
        "embeddings": ("POST", "/v1/embeddings", direct, {"model": "m", "input": ["a", "b"], "encoding_format": "float"},
                       "body"),
        "completions": ("POST", "/v1/completions", direct, {"model": "m", "prompt": ["a"], "max_tokens": 3}, "body"),
        "gateway config": ("POST", "/v1/chat/completions", {"x-portkey-metadata": '{"a": "b"}'},
                           {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "config"),
        "catalog provider": ("POST", "/admin/api/providers", ADMIN,
                             {"slug": "odd", "spec": "openai", "custom_host": upstream, "models": ["m"],
                              "default_model": "m", "headers": {"authorization": "Bearer sk-test-bbbb"},
                              "forward_headers": ["x-b"], "notes": "n"}, "body"),
        "saved config": ("POST", "/admin/api/configs", ADMIN, {"id": "pc-odd", "config": _config(upstream), "notes": "n"},
                         "body"),
        "limits": ("PUT", "/admin/api/limits/provider/odd", ADMIN,
                   {**LIMITS, "prices": {"m": {"input": 1, "output": 2, "per": 1000}}}, "body"),
        "workspace": ("POST", "/v1/admin/workspaces", ADMIN,
                      {"name": "w", "description": "d", "defaults": {"metadata": {"a": "b"}}, **LIMITS}, "body"),
        "api key": ("POST", "/v1/api-keys/organisation/service", ADMIN,
                    {"name": "k", "scopes": ["completions.write", "logs.view"], "expires_at": "2999-01-01T00:00:00Z",
                     "defaults": {"metadata": {"a": "b"}}, **LIMITS}, "body"),
        "integration": ("POST", "/v1/integrations", ADMIN, {"name": "i", "ai_provider_id": "openai", "key": "sk-test-cccc",
                                                           "configurations": {"custom_host": upstream}}, "body"),
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(Path(tmp_path_factory.mktemp("odd-json")), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


@pytest.mark.parametrize("seed", list(_seeds("http://127.0.0.1:9/v1")))
def test_every_field_of_another_json_type_is_served_or_a_4xx(gateway: GatewayProcess, upstream, seed: str) -> None:
    method, path, headers, body, mutated = _seeds(upstream.v1)[seed]
    config = _config(upstream.v1) if mutated == "config" else None
    document = config if config is not None else body

    def send(client: httpx.Client, changed: Any) -> httpx.Response:
        head = dict(headers)
        if config is not None:
            head["x-portkey-config"] = json.dumps(changed)
        sent = body if config is not None else changed
        return client.request(method, gateway.url + path, headers=head, json=sent)

    with httpx.Client(timeout=30) as client:
        if path.startswith("/admin/api/limits/provider/"):  # limits are set on a provider that exists (else 404)
            client.post(gateway.url + "/admin/api/providers", headers=ADMIN,
                        json={"slug": path.rsplit("/", 1)[1], "spec": "openai", "custom_host": upstream.v1})
        assert send(client, document).status_code < 300  # the seed itself is valid: its fields are reached
        failures = []
        for field in fields(document):
            for new in ODD:
                answer = send(client, replaced(document, field, new))
                if answer.status_code >= 500 or b"Traceback" in answer.content:
                    failures.append((field, repr(new)[:20], answer.status_code, answer.text[:200]))
    assert failures == []


# What an upstream answers, each field given another type in turn: a whole chat completion, the chunks of a
# chat stream, an Anthropic message. The gateway relays it, or says it could not use it (502), and logs it.
CHAT_ANSWER = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                            "message": {"role": "assistant", "content": "ok", "tool_calls": [
                                {"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]}}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                         "prompt_tokens_details": {"cached_tokens": 1}}}
CHAT_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": None, "delta": {"role": "assistant", "content": "hi"}}]}
USAGE_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
ANTHROPIC_MESSAGE = {"id": "msg", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                     "content": [{"type": "text", "text": "ok"},
                                 {"type": "tool_use", "id": "t", "name": "get", "input": {"a": 1}}],
                     "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 1}}


def _answers(kind: str) -> Iterator[tuple[str, dict[str, Any], Reply]]:
    """(route, request body, the upstream's reply) for every field of the kind's answer, given each odd value."""
    chat = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for position, field in enumerate(fields({"chat answer": CHAT_ANSWER, "chat stream": CHAT_CHUNK,
                                                   "usage chunk": USAGE_CHUNK, "anthropic": ANTHROPIC_MESSAGE}[kind])):
        for new in ODD:
            route = ("/v1/chat/completions", "/v1/messages")[position % 2]  # as is, and translated
            # json.dumps, not the fake's orjson: it writes the 300 levels orjson would refuse
            if kind == "chat answer":
                yield route, chat, Reply(body=json.dumps(replaced(CHAT_ANSWER, field, new)).encode())
            elif kind == "anthropic":
                yield "/v1/chat/completions", chat, Reply(body=json.dumps(replaced(ANTHROPIC_MESSAGE, field, new)).encode())
            else:
                first, last = ((replaced(CHAT_CHUNK, field, new), USAGE_CHUNK) if kind == "chat stream"
                               else (CHAT_CHUNK, replaced(USAGE_CHUNK, field, new)))
                events = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in (first, last)]
                yield route, {**chat, "stream": True}, Reply(stream=[*events, "[DONE]"])


@pytest.fixture(scope="module")
def answering_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway of its own: the admin bodies above create API keys, after which requests need one."""
    process = GatewayProcess(Path(tmp_path_factory.mktemp("odd-answers"))).start()
    yield process
    process.stop()


@pytest.mark.parametrize("kind", ["chat answer", "chat stream", "usage chunk", "anthropic"])
def test_every_field_of_an_upstream_answer_of_another_json_type_is_relayed_or_a_502_and_logged(
        answering_gateway: GatewayProcess, upstream, kind: str) -> None:
    gateway = answering_gateway
    provider = "anthropic" if kind == "anthropic" else "openai"
    headers = {"x-portkey-provider": provider, "x-portkey-custom-host": upstream.v1, "x-api-key": "sk-test-dddd",
               "authorization": "Bearer sk-test-dddd"}
    before = _written(gateway)
    sent, failures = 0, []
    with httpx.Client(timeout=30) as client:
        for route, body, reply in _answers(kind):
            upstream.push(reply)
            answer = client.post(gateway.url + route, headers=headers, json=body)
            sent += 1
            if answer.status_code not in (200, 502) or b"Traceback" in answer.content:
                failures.append((route, (reply.body or b"")[:80], answer.status_code, answer.text[:200]))
    assert failures == []
    assert _written(gateway, at_least=before + sent) >= before + sent  # every request logged, none refused


def _written(gateway: GatewayProcess, at_least: float = 0) -> float:
    """The log's written count from /metrics, once it reaches ``at_least`` (or after 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=30).text
        written = next(float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith("sluicegate_log_records_written_total"))
        if written >= at_least or time.monotonic() > deadline:
            assert "sluicegate_log_store_up 1.0" in metrics
            return written
        time.sleep(0.05)
