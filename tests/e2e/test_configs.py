"""Gateway Configs end to end: fallback, retries, load balancing, conditional routing, circuit breaker.

Real gateway process, the real portkey-ai SDK (``config=``) and raw HTTP, several scripted upstreams. The
"commercial" provider's default base URL is moved to a loopback fake with SLUICEGATE_PROVIDER_URL_OPENAI,
as an operator behind an egress proxy would.
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.fakes.upstream import FakeUpstream, Reply, chat_chunks
from tests.gateway import GatewayProcess

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def fakes():
    servers = [FakeUpstream().start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def private(fakes):
    fakes[0].reset()
    return fakes[0]


@pytest.fixture
def second(fakes):
    fakes[1].reset()
    return fakes[1]


@pytest.fixture
def commercial(fakes):
    """Stands in for api.openai.com: the gateway's openai default URL points here."""
    fakes[2].reset()
    return fakes[2]


@pytest.fixture(scope="module")
def gw(tmp_path_factory, fakes):
    env = {"SLUICEGATE_PROVIDER_URL_OPENAI": fakes[2].v1, "SLUICEGATE_RETRY_BACKOFF_SCALE": "0.01"}
    process = GatewayProcess(tmp_path_factory.mktemp("configs"), env=env).start()
    yield process
    process.stop()


def send(gw, config, body=CHAT, **headers) -> httpx.Response:
    text = config if isinstance(config, str) else json.dumps(config)
    return httpx.post(f"{gw.v1}/chat/completions", json=body, timeout=30,
                      headers={"x-portkey-config": text, **headers})


def test_seed_fallback_private_to_commercial(gw, private, commercial):
    """The seed's forward-headers config (without its // comment, which is not JSON), verbatim."""
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "custom_host": private.v1,
             "forward_headers": ["Authorization", "x-api-key", "x-custom-token"]},
            {"provider": "openai", "api_key": "sk-xxxxx"},
        ],
    }
    private.push(Reply(status=503, json={"error": {"message": "private LLM down"}}))
    portkey = Portkey(base_url=gw.v1, config=config, Authorization="Bearer private-token")
    response = portkey.chat.completions.create(**CHAT)
    assert response.get_headers()["last-used-option-index"] == "config.targets[1]"
    assert response.choices[0].message.content == "echo: hi"
    assert private.last.headers["authorization"] == "Bearer private-token"
    assert commercial.last.headers["authorization"] == "Bearer sk-xxxxx"  # config api_key, not the client's


def test_seed_fallback_forwards_custom_headers_to_the_private_target_only(gw, private, commercial):
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": private.v1,
                           "forward_headers": ["Authorization", "x-api-key", "x-custom-token"]},
                          {"provider": "openai", "api_key": "sk-xxxxx"}]}
    private.push(Reply(status=500))
    client = openai.OpenAI(api_key="private-token", base_url=gw.v1, max_retries=0, default_headers={
        "x-portkey-config": json.dumps(config), "x-api-key": "k2", "x-custom-token": "tok"})
    client.chat.completions.create(**CHAT)
    assert (private.last.headers["x-api-key"], private.last.headers["x-custom-token"]) == ("k2", "tok")
    sent = {k.lower(): v for k, v in commercial.last.headers.items()}
    assert sent["authorization"] == "Bearer sk-xxxxx"
    assert "x-api-key" not in sent and "x-custom-token" not in sent


def test_fallback_on_listed_codes_only(gw, private, commercial):
    config = {"strategy": {"mode": "fallback", "on_status_codes": [429]},
              "targets": [{"provider": "openai", "custom_host": private.v1}, {"provider": "openai", "api_key": "k"}]}
    private.push(Reply(status=500, json={"error": {"message": "boom"}}))
    response = send(gw, config)
    assert response.status_code == 500 and response.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert commercial.received == []
    private.push(Reply(status=429, json={"error": {"message": "slow down"}}))
    assert send(gw, config).headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_all_targets_fail_returns_the_last_response(gw, private, second):
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": private.v1},
                          {"provider": "openai", "custom_host": second.v1}]}
    private.push(Reply(status=500, json={"error": {"message": "first"}}))
    second.push(Reply(status=502, json={"error": {"message": "second"}}))
    response = send(gw, config)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "openai error: second"
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert response.headers["x-should-retry"] == "false"


def test_retries_then_success_counts_them(gw, private):
    private.push(Reply(status=503), Reply(status=503))
    config = {"provider": "openai", "custom_host": private.v1, "retry": {"attempts": 3}}
    response = send(gw, config)
    assert response.status_code == 200
    assert response.headers["x-portkey-retry-attempt-count"] == "2"
    assert len(private.received) == 3


def test_retries_exhausted_is_minus_one(gw, private):
    private.push(*[Reply(status=429, json={"error": {"message": "busy"}})] * 3)
    config = {"provider": "openai", "custom_host": private.v1, "retry": {"attempts": 2}}
    response = send(gw, config)
    assert response.status_code == 429 and response.headers["x-portkey-retry-attempt-count"] == "-1"
    assert len(private.received) == 3


def test_non_retryable_status_is_returned_at_once(gw, private):
    private.push(Reply(status=400, json={"error": {"message": "bad"}}))
    response = send(gw, {"provider": "openai", "custom_host": private.v1, "retry": {"attempts": 3}})
    assert response.status_code == 400 and response.headers["x-portkey-retry-attempt-count"] == "0"
    assert len(private.received) == 1


def test_retry_after_is_honoured(gw, private):
    private.push(Reply(status=429, headers={"retry-after": "1"}))
    config = {"provider": "openai", "custom_host": private.v1,
              "retry": {"attempts": 1, "use_retry_after_headers": True}}
    started = time.monotonic()
    response = send(gw, config)
    assert response.status_code == 200 and time.monotonic() - started >= 1.0  # not the scaled backoff


def test_timeout_then_fallback(gw, private, second):
    private.push(Reply(delay=2.0))
    config = {"strategy": {"mode": "fallback"}, "request_timeout": 200,
              "targets": [{"provider": "openai", "custom_host": private.v1},
                          {"provider": "openai", "custom_host": second.v1}]}
    response = send(gw, config)
    assert response.status_code == 200 and response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_connection_refused_is_retried_and_falls_back(gw, second):
    dead = "http://127.0.0.1:9/v1"
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": dead, "retry": {"attempts": 1}},
                          {"provider": "openai", "custom_host": second.v1}]}
    response = send(gw, config)
    assert response.status_code == 200 and response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_weighted_split(gw, private, second):
    config = {"strategy": {"mode": "loadbalance"},
              "targets": [{"provider": "openai", "custom_host": private.v1, "weight": 3},
                          {"provider": "openai", "custom_host": second.v1, "weight": 1},
                          {"provider": "openai", "custom_host": "http://127.0.0.1:9/v1", "weight": 0}]}
    with httpx.Client(timeout=30) as client:
        for _ in range(1000):
            response = client.post(f"{gw.v1}/chat/completions", json=CHAT,
                                   headers={"x-portkey-config": json.dumps(config)})
            assert response.status_code == 200
    # Binomial(1000, 0.75): the standard deviation is ~13.7, so ±80 is ~6 sigma.
    assert abs(len(private.received) - 750) < 80
    assert len(private.received) + len(second.received) == 1000


def test_conditional_routing_by_metadata(gw, private, second):
    config = {
        "strategy": {"mode": "conditional",
                     "conditions": [{"query": {"metadata.user_plan": {"$eq": "paid"}}, "then": "big"},
                                    {"query": {"params.model": {"$regex": "^small"}}, "then": "small"}],
                     "default": "small"},
        "targets": [{"name": "big", "provider": "openai", "custom_host": private.v1},
                    {"name": "small", "provider": "openai", "custom_host": second.v1}],
    }
    portkey = Portkey(base_url=gw.v1, config=config, metadata={"user_plan": "paid"})
    paid = portkey.chat.completions.create(**CHAT)
    assert paid.get_headers()["last-used-option-index"] == "config.targets[0]"
    free = send(gw, config, **{"x-portkey-metadata": '{"user_plan": "free"}'})
    assert free.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert len(private.received) == 1 and len(second.received) == 1


def test_conditional_router_errors_are_400(gw, private):
    config = {"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.x": "1"}, "then": "a"}]},
              "targets": [{"name": "a", "provider": "openai", "custom_host": private.v1}]}
    response = send(gw, config)
    assert response.status_code == 400
    assert response.json()["message"] == "Query router did not resolve to any valid target"



def test_a_regex_that_backtracks_exponentially_does_not_stall_the_gateway(gw, private, second):
    # A backtracking engine spent hours on this subject, answering nobody meanwhile; the client's timeout turns
    # that hang into a failure. RE2 answers at once: no match, so the default.
    config = {"strategy": {"mode": "conditional",
                           "conditions": [{"query": {"params.user": {"$regex": "^(a|a)*$"}}, "then": "x"}],
                           "default": "y"},
              "targets": [{"name": "x", "provider": "openai", "custom_host": private.v1},
                          {"name": "y", "provider": "openai", "custom_host": second.v1}]}
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{gw.v1}/chat/completions", json=CHAT | {"user": "a" * 40 + "!"},
                               headers={"x-portkey-config": json.dumps(config)})
    assert response.status_code == 200
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_a_regex_beyond_re2_is_refused_with_its_path(gw, private):
    config = {"strategy": {"mode": "conditional",
                           "conditions": [{"query": {"params.user": {"$regex": "^(a)\\1$"}}, "then": "x"}]},
              "targets": [{"name": "x", "provider": "openai", "custom_host": private.v1}]}
    response = send(gw, config)
    assert response.status_code == 400
    assert response.json()["errors"] == ["path: strategy,conditions,0,query,params.user,$regex, message: "
                                         "Invalid $regex pattern: invalid escape sequence: \\1"]
    assert private.received == []

def test_nested_fallback_inside_loadbalance(gw, private, second):
    config = {"strategy": {"mode": "loadbalance"},
              "targets": [{"strategy": {"mode": "fallback"},
                           "targets": [{"provider": "openai", "custom_host": private.v1},
                                       {"provider": "openai", "custom_host": second.v1}]}]}
    private.push(Reply(status=500))
    response = send(gw, config)
    assert response.status_code == 200
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0].targets[1]"


def test_inherited_settings_and_header_overrides(gw, private, second):
    config = {"strategy": {"mode": "fallback"}, "custom_host": private.v1,
              "override_params": {"temperature": 0.1, "max_tokens": 5},
              "targets": [{"provider": "openai", "override_params": {"max_tokens": 9}}]}
    send(gw, config)
    assert private.last.json() | {} == {**CHAT, "temperature": 0.1, "max_tokens": 9}
    send(gw, config, **{"x-portkey-custom-host": second.v1})  # the header wins for every target
    assert len(private.received) == 1 and len(second.received) == 1


def test_stream_error_before_content_falls_back(gw, private, second):
    private.push(Reply(stream=[{"error": {"message": "overloaded"}}]))
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": private.v1},
                          {"provider": "openai", "custom_host": second.v1}]}
    portkey = Portkey(base_url=gw.v1, config=config)
    stream = portkey.chat.completions.create(stream=True, **CHAT)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: hi "


def test_a_stream_error_before_content_counts_as_the_status_it_names(gw, private, second):
    """A rate-limit error event before any content is a 429 to a fallback's on_status_codes, and an
    invalid-request one (vLLM puts the status in "code") reaches the client as the 400 it is."""
    config = {"strategy": {"mode": "fallback", "on_status_codes": [429]},
              "targets": [{"provider": "openai", "custom_host": private.v1},
                          {"provider": "openai", "custom_host": second.v1}]}
    private.push(Reply(stream=[{"error": {"message": "slow down", "type": "rate_limit_error"}}]))
    stream = Portkey(base_url=gw.v1, config=config).chat.completions.create(stream=True, **CHAT)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: hi "
    assert len(second.received) == 1

    private.push(Reply(stream=[{"error": {"message": "bad prompt", "type": "BadRequestError", "code": 400}}]))
    client = openai.OpenAI(api_key="k", base_url=gw.v1, max_retries=0,
                           default_headers={"x-portkey-config": json.dumps(config)})
    with pytest.raises(openai.BadRequestError, match="bad prompt"):
        client.chat.completions.create(stream=True, **CHAT)
    assert len(second.received) == 1  # a 400 is not in on_status_codes: no fallback

    single = {"provider": "openai", "custom_host": private.v1}
    private.push(Reply(stream=[{"error": {"message": "quota", "code": "rate_limit_exceeded"}}]))
    response = send(gw, single, body={**CHAT, "stream": True})
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "openai error: quota"


def test_stream_dropped_after_content_is_an_error_event_not_a_fallback(gw, private, second):
    private.push(Reply(stream=chat_chunks("one two three"), drop_after=2))
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": private.v1},
                          {"provider": "openai", "custom_host": second.v1}]}
    client = openai.OpenAI(api_key="k", base_url=gw.v1, max_retries=0,
                           default_headers={"x-portkey-config": json.dumps(config)})
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(stream=True, **CHAT):
            pass
    assert second.received == []


def test_circuit_breaker_skips_a_failing_target(gw, private, second):
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "custom_host": private.v1,
                           "cb_config": {"failure_threshold": 2, "cooldown_interval": 60000}},
                          {"provider": "openai", "custom_host": second.v1}]}
    private.push(*[Reply(status=500)] * 10)
    for _ in range(6):
        assert send(gw, config).status_code == 200
    assert len(private.received) == 2  # opened after two failures; later requests skip it
    assert len(second.received) == 6


BAD_CONFIGS = [
    ("not JSON", "{oops", "Invalid config passed. You need to pass a valid json"),
    ("unknown mode", {"strategy": {"mode": "roundrobin"}, "targets": [{"provider": "openai"}]},
     "Invalid 'mode' value"),
    ("unknown provider", {"provider": "nope"}, "Invalid 'provider' value"),
    ("empty targets", {"strategy": {"mode": "fallback"}, "targets": []}, "targets"),
    ("attempts over 5", {"provider": "openai", "retry": {"attempts": 6}}, "retry,attempts"),
    ("negative weight", {"strategy": {"mode": "loadbalance"},
                         "targets": [{"provider": "openai", "weight": -1}]}, "targets,0,weight"),
    ("unknown key", {"provider": "openai", "retyr": {"attempts": 1}}, "retyr"),
    ("self-referencing forward headers", {"provider": "openai", "forward_headers": ["x-portkey-forward-headers"]},
     "forward_headers must not contain the 'x-portkey-forward-headers' header"),
    ("unknown operator", {"strategy": {"mode": "conditional", "default": "a",
                                       "conditions": [{"query": {"metadata.x": {"$like": 1}}, "then": "a"}]},
                          "targets": [{"name": "a", "provider": "openai"}]}, "$like"),
    ("bad custom host", {"provider": "openai", "custom_host": "ftp://x/v1"}, "Invalid custom host"),
    ("camelCase alias validated", {"provider": "openai", "customHost": "gopher://x"}, "Invalid custom host"),
    ("a line break in api_key", {"provider": "openai", "api_key": "sk-secret\nX", "retry": {"attempts": 2}},
     "api_key, message: must not contain line breaks"),
]


@pytest.mark.parametrize(("case", "config", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configs(gw, private, case, config, message):
    response = send(gw, config, **{"x-portkey-provider": "openai"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "failure"
    assert message in body["message"] + " ".join(body.get("errors", []))
    assert private.received == []


def test_a_retry_after_past_the_budget_stops_the_sdk_retrying_too(gw, private):
    """The gateway does not wait 120 s (its retry budget is 60 s); neither may the SDK retry at once."""
    config = {"provider": "openai", "custom_host": private.v1, "retry": {"attempts": 2, "use_retry_after_header": True}}
    private.push(*[Reply(status=429, headers={"retry-after": "120"}, json={"error": {"message": "wait"}})] * 3)
    client = openai.OpenAI(api_key="k", base_url=gw.v1, max_retries=2,
                           default_headers={"x-portkey-config": json.dumps(config)})
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert refused.value.response.headers["x-portkey-retry-attempt-count"] == "-1"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert len(private.received) == 1


def test_an_inline_config_larger_than_8_kib_is_taken_and_one_past_16_kib_refused_clearly(gw, private):
    """Forty fallback targets make a ~9 KiB header, which Portkey's Node server (16 KiB of head) takes."""
    def config(targets: int) -> str:
        spare = {"provider": "openai", "api_key": "k", "custom_host": private.v1, "override_params": {"user": "u" * 150}}
        return json.dumps({"strategy": {"mode": "fallback"}, "targets": [spare] * targets})

    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    taken = httpx.post(f"{gw.v1}/chat/completions", json=body, headers={"x-portkey-config": config(40)}, timeout=30)
    assert len(config(40)) > 9000 and taken.status_code == 200, taken.text
    refused = httpx.post(f"{gw.v1}/chat/completions", json=body, headers={"x-portkey-config": config(80)}, timeout=30)
    assert len(config(80)) > 16384 and refused.status_code == 400, refused.text
    assert refused.json()["message"] == (
        "malformed HTTP request: Got more than 16384 bytes when reading a line of the request head")
