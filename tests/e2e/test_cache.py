"""The response cache end to end: a real gateway process, the real portkey-ai and openai SDKs and raw HTTP,
scripted upstreams that count their calls. The memory backend by default; the store and Redis backends
each get a process of their own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import openai
import pytest
from portkey_ai import Portkey

from sluicegate.settings import Settings
from tests.access.world import World
from tests.fakes.upstream import FakeUpstream, Reply, chat_chunks
from tests.gateway import GatewayProcess
from tests.limits.conftest import PrivateRedis
from tests.logapi import new_trace

SECRET = "sk-cache-secret-0123456789abcdef"
CLIENT_SECRET = "client-cred-fedcba9876543210"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def llm():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(llm):
    llm.reset()
    return llm


def cache_config(upstream: FakeUpstream, max_age: int = 60) -> dict:
    return {"provider": "openai", "api_key": SECRET, "custom_host": upstream.v1,
            "cache": {"mode": "simple", "max_age": max_age}}


def start(tmp_path_factory, name: str, **env: str) -> GatewayProcess:
    return GatewayProcess(tmp_path_factory.mktemp(name), env=env).start()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    process = start(tmp_path_factory, "cache")
    yield process
    process.stop()


def post(gw, upstream, body=CHAT, config=None, **headers) -> httpx.Response:
    config = config or cache_config(upstream)
    return httpx.post(f"{gw.v1}/chat/completions", json=body, timeout=30,
                      headers={"x-portkey-config": json.dumps(config), "authorization": "Bearer k", **headers})


def test_hit_and_miss_through_the_portkey_sdk(gw, upstream):
    portkey = Portkey(base_url=gw.v1, config=cache_config(upstream))
    first = portkey.chat.completions.create(**CHAT)
    second = portkey.chat.completions.create(**CHAT)
    other = portkey.chat.completions.create(model="m", messages=[{"role": "user", "content": "other"}])
    assert [r.get_headers()["cache-status"] for r in (first, second, other)] == ["MISS", "HIT", "MISS"]
    assert (second.id, second.created, second.choices[0].message.content) == (
        first.id, first.created, "echo: hi")
    assert len(upstream.received) == 2


def test_force_refresh_dispatches_and_replaces_the_entry(gw, upstream):
    config = cache_config(upstream)
    Portkey(base_url=gw.v1, config=config).chat.completions.create(model="m2", messages=CHAT["messages"])
    upstream.push(Reply(json={"id": "fresh", "object": "chat.completion", "created": 1, "model": "m2",
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": "fresh"},
                                           "finish_reason": "stop"}]}))
    refreshed = Portkey(base_url=gw.v1, config=config, cache_force_refresh=True).chat.completions.create(
        model="m2", messages=CHAT["messages"])
    after = Portkey(base_url=gw.v1, config=config).chat.completions.create(model="m2", messages=CHAT["messages"])
    assert refreshed.get_headers()["cache-status"] == "REFRESH"
    assert after.get_headers()["cache-status"] == "HIT" and after.choices[0].message.content == "fresh"
    assert len(upstream.received) == 2


def test_a_namespace_partitions_the_cache(gw, upstream):
    body = {"model": "ns", "messages": CHAT["messages"]}
    statuses = [post(gw, upstream, body, **{"x-portkey-cache-namespace": ns}).headers["x-portkey-cache-status"]
                for ns in ("team-a", "team-b", "team-a")]
    assert statuses == ["MISS", "MISS", "HIT"] and len(upstream.received) == 2


def test_two_callers_with_different_credentials_never_share_an_entry(gw, upstream):
    # The provider and its credential come from the request; the config only switches the cache on.
    headers = {"x-portkey-config": json.dumps({"cache": {"mode": "simple"}}), "x-portkey-provider": "openai",
               "x-portkey-custom-host": upstream.v1}
    clients = [openai.OpenAI(api_key=key, base_url=gw.v1, max_retries=0, default_headers=headers)
               for key in ("key-a", "key-b", "key-a")]
    answers = [c.chat.completions.with_raw_response.create(model="cred", messages=CHAT["messages"]) for c in clients]
    assert [a.headers["x-portkey-cache-status"] for a in answers] == ["MISS", "MISS", "HIT"]
    assert [r.headers["authorization"] for r in upstream.received] == ["Bearer key-a", "Bearer key-b"]


def test_max_age_expires_an_entry(gw, upstream):
    body = {"model": "short", "messages": CHAT["messages"]}
    config = cache_config(upstream, max_age=1)
    assert post(gw, upstream, body, config).headers["x-portkey-cache-status"] == "MISS"
    assert post(gw, upstream, body, config).headers["x-portkey-cache-status"] == "HIT"
    time.sleep(1.3)
    assert post(gw, upstream, body, config).headers["x-portkey-cache-status"] == "MISS"
    assert len(upstream.received) == 2


def test_a_replayed_stream_equals_the_original(gw, upstream):
    body = {"model": "s", "messages": CHAT["messages"], "stream": True}
    upstream.push(Reply(stream=chat_chunks("the first answer")), Reply(stream=chat_chunks("another answer")))
    first = post(gw, upstream, body)
    second = post(gw, upstream, body)
    assert (first.headers["x-portkey-cache-status"], second.headers["x-portkey-cache-status"]) == ("MISS", "HIT")
    assert second.content == first.content and first.content.endswith(b"data: [DONE]\n\n")
    assert second.headers["content-type"].startswith("text/event-stream") and len(upstream.received) == 1
    client = openai.OpenAI(api_key="k", base_url=gw.v1, max_retries=0,
                           default_headers={"x-portkey-config": json.dumps(cache_config(upstream))})
    chunks = client.chat.completions.create(model="s", messages=CHAT["messages"], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "the first answer "


def test_a_stream_the_client_leaves_early_leaves_no_entry(gw, upstream):
    body = {"model": "cut", "messages": CHAT["messages"], "stream": True}
    upstream.push(Reply(stream=chat_chunks(" ".join(["word"] * 40)), chunk_interval=0.05))
    headers = {"x-portkey-config": json.dumps(cache_config(upstream))}
    with httpx.stream("POST", f"{gw.v1}/chat/completions", json=body, headers=headers, timeout=30) as response:
        assert next(response.iter_raw()).startswith(b"data: ")
    deadline = time.monotonic() + 15
    while upstream.aborted_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.aborted_streams == 1
    again = post(gw, upstream, body)
    assert again.headers["x-portkey-cache-status"] == "MISS" and len(upstream.received) == 2


def test_an_error_answer_is_not_stored(gw, upstream):
    body = {"model": "err", "messages": CHAT["messages"]}
    upstream.push(Reply(status=400, json={"error": {"message": "bad"}}))
    assert post(gw, upstream, body).status_code == 400
    assert post(gw, upstream, body).headers["x-portkey-cache-status"] == "MISS"


def test_the_store_backend_serves_hits_and_holds_no_secret(tmp_path_factory, upstream):
    gw = start(tmp_path_factory, "cache-store", SLUICEGATE_CACHE_BACKEND="store")
    try:
        body = {"model": "stored", "messages": [{"role": "user", "content": "remember me"}]}
        auth = {"authorization": f"Bearer {CLIENT_SECRET}"}
        assert post(gw, upstream, body, **auth).headers["x-portkey-cache-status"] == "MISS"
        hit = eventually_hit(lambda: post(gw, upstream, body, **auth))
        assert hit.json()["choices"][0]["message"]["content"] == "echo: remember me"
        assert len(upstream.received) == 1
    finally:
        gw.stop()
    stored = b"".join(p.read_bytes() for p in Path(gw.data_dir).glob("sluicegate.db*"))
    assert b"echo: remember me" in stored
    assert SECRET.encode() not in stored and CLIENT_SECRET.encode() not in stored


def test_replicas_share_entries_through_redis(tmp_path_factory, upstream):
    env = {"SLUICEGATE_CACHE_BACKEND": "redis", "SLUICEGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    replicas = [start(tmp_path_factory, f"cache-redis-{i}", **env) for i in range(2)]
    try:
        body = {"model": f"redis-{time.time_ns()}", "messages": CHAT["messages"]}
        assert post(replicas[0], upstream, body).headers["x-portkey-cache-status"] == "MISS"
        eventually_hit(lambda: post(replicas[1], upstream, body))
        assert len(upstream.received) == 1
    finally:
        for gw in replicas:
            gw.stop()


def test_a_cache_redis_of_its_own_keeps_entries_out_of_the_limits_redis(tmp_path_factory, upstream):
    """SLUICEGATE_CACHE_REDIS_URL: entries go to the cache's server (which may evict), none to the one that
    counts limits (which must not)."""
    from redis import Redis

    servers = [PrivateRedis(tmp_path_factory.mktemp(name)) for name in ("cache-redis", "limits-redis")]
    for server in servers:
        server.start()
    cache_redis, limits_redis = (Redis.from_url(server.url, socket_timeout=2) for server in servers)
    env = {"SLUICEGATE_CACHE_BACKEND": "redis", "SLUICEGATE_CACHE_REDIS_URL": servers[0].url,
           "SLUICEGATE_REDIS_URL": servers[1].url}
    gw = start(tmp_path_factory, "cache-own-redis", **env)
    try:
        body = {"model": f"own-{time.time_ns()}", "messages": CHAT["messages"]}
        assert post(gw, upstream, body).headers["x-portkey-cache-status"] == "MISS"
        eventually_hit(lambda: post(gw, upstream, body))
        assert len(upstream.received) == 1
        assert list(cache_redis.scan_iter(match="sluicegate:cache:*"))
        assert not list(limits_redis.scan_iter(match="sluicegate:cache:*"))
    finally:
        gw.stop()
        for client, server in zip((cache_redis, limits_redis), servers, strict=True):
            client.close()
            server.stop()


def eventually_hit(send) -> httpx.Response:
    """The write after a miss runs off the request path: allow it a moment on a loaded machine."""
    deadline = time.monotonic() + 10
    while True:
        response = send()
        if response.headers["x-portkey-cache-status"] == "HIT" or time.monotonic() > deadline:
            assert response.headers["x-portkey-cache-status"] == "HIT"
            return response
        time.sleep(0.1)


def test_the_request_log_and_analytics_count_hits_and_what_they_saved(logged_gateway, log_api, upstream):
    trace = new_trace()
    body = {"model": f"logged-{trace}", "messages": CHAT["messages"]}
    statuses = [post(logged_gateway, upstream, body, **{"x-portkey-trace-id": trace}).headers["x-portkey-cache-status"]
                for _ in range(2)]
    assert statuses == ["MISS", "HIT"]
    records = log_api.wait(2, trace_id=trace)
    assert sorted(r["cache_status"] for r in records) == ["HIT", "MISS"]
    totals = log_api.get("/analytics", trace_id=trace).json()["totals"]
    assert (totals["cache_hits"], totals["cache_misses"], totals["cache_hit_rate"]) == (1, 1, 0.5)
    assert totals["tokens_saved"] == 8  # the fake's usage: 5 prompt + 3 completion tokens


def test_semantic_mode_hits_a_paraphrase_and_never_a_negation(gw, upstream):
    config = {**cache_config(upstream), "cache": {"mode": "semantic"}}
    portkey = Portkey(base_url=gw.v1, config=config)

    def ask(text: str) -> str:
        answer = portkey.chat.completions.create(model="sem", messages=[{"role": "user", "content": text}])
        return answer.get_headers()["cache-status"]

    # A prompt is indexed off the request path; a lookup in its bucket waits for that to finish.
    assert ask("How do I reset my password?") == "SEMANTIC MISS"
    assert ask("What's the way to reset my password?") == "SEMANTIC HIT"
    assert ask("Is aspirin safe for children?") == "SEMANTIC MISS"
    assert ask("Is aspirin unsafe for children?") == "SEMANTIC MISS"
    assert len(upstream.received) == 3


def test_keys_share_entries_only_through_a_namespace_and_never_across_workspaces(tmp_path_factory, upstream):
    """Admission sets the cache scope to the key's workspace and id: the same request under another key is
    a MISS, under the same key a HIT; a namespace shares on purpose between keys of one workspace, and
    never lets another workspace's key read the entry."""
    data = tmp_path_factory.mktemp("cache-keys")
    world = World(Settings(data_dir=data))
    team_a, team_b = world.workspace("Team A"), world.workspace("Team B")
    _, key_a = world.key("a", workspace_id=team_a, scopes=["completions.write"])
    _, key_b = world.key("b", workspace_id=team_b, scopes=["completions.write"])
    _, key_a2 = world.key("a2", workspace_id=team_a, scopes=["completions.write"])
    process = GatewayProcess(data).start()
    try:
        def ask(key: str, **extra) -> str:
            portkey = Portkey(base_url=process.v1, api_key=key, config=cache_config(upstream), **extra)
            return portkey.chat.completions.create(**CHAT).get_headers()["cache-status"]

        assert [ask(key_a), ask(key_a), ask(key_b), ask(key_b)] == ["MISS", "HIT", "MISS", "HIT"]
        assert len(upstream.received) == 2
        shared = [ask(key_a, cache_namespace="shared"), ask(key_a2, cache_namespace="shared"),
                  ask(key_b, cache_namespace="shared")]
        assert shared == ["MISS", "HIT", "MISS"]
        assert len(upstream.received) == 4
    finally:
        process.stop()


def test_a_catalog_provider_answers_from_the_cache_only_as_it_stands(tmp_path_factory, upstream):
    """Its own forwarded headers are in the key (bob was answered with what the upstream told alice), and
    an entry stored under its slug stops matching once the provider is edited, narrowed or deleted."""
    admin = {"authorization": "Bearer admin-token-for-cache-tests-0123"}
    gw = start(tmp_path_factory, "cache-catalog", SLUICEGATE_ADMIN_TOKEN=admin["authorization"][7:])
    try:
        created = httpx.post(f"{gw.url}/admin/api/providers", headers=admin, timeout=30, json={
            "slug": "fw", "custom_host": upstream.v1, "forward_headers": ["x-user"],
            "headers": {"Authorization": f"Bearer {SECRET}"}})
        assert created.status_code == 201, created.text

        def ask(user: str) -> httpx.Response:
            return httpx.post(f"{gw.v1}/chat/completions", json={**CHAT, "model": "@fw/m"}, timeout=30,
                              headers={"x-portkey-config": '{"cache": {"mode": "simple"}}', "x-user": user})

        statuses = [ask(user).headers.get("x-portkey-cache-status") for user in ("alice", "bob", "bob")]
        assert statuses == ["MISS", "MISS", "HIT"]
        assert [r.headers["x-user"] for r in upstream.received] == ["alice", "bob"]
        narrowed = httpx.patch(f"{gw.url}/admin/api/providers/fw", headers=admin, json={"models": ["other"]})
        assert narrowed.status_code == 200, narrowed.text
        refused = ask("bob")
        assert refused.status_code == 400 and "not available on @fw" in refused.text
        assert httpx.delete(f"{gw.url}/admin/api/providers/fw", headers=admin).status_code in (200, 204)
        gone = ask("bob")
        assert gone.status_code == 400 and "not found in the catalog" in gone.text
        assert len(upstream.received) == 2
    finally:
        gw.stop()


def test_semantic_mode_never_matches_a_cut_off_question_or_a_different_number(gw, upstream):
    """Two questions after the same long document embed identically once the encoder cuts them off at its
    256-token window; "5mg" and "50mg" are a word apart. Both pairs were SEMANTIC HITs: now neither is."""
    config = {**cache_config(upstream), "cache": {"mode": "semantic"}}
    portkey = Portkey(base_url=gw.v1, config=config)

    def ask(text: str) -> str:
        answer = portkey.chat.completions.create(model="sem-guard", messages=[{"role": "user", "content": text}])
        return answer.get_headers()["cache-status"]

    doc = "The quarterly report covers revenue, costs and the outlook for each region. " * 19
    assert ask(doc + "Question: summarize this report") == "SEMANTIC MISS"
    assert ask(doc + "Question: translate this report into French") == "SEMANTIC MISS"
    assert ask(doc + "Question: summarize this report") == "HIT"  # the exact match still serves it
    assert ask("Is 5mg of melatonin safe for adults?") == "SEMANTIC MISS"
    assert ask("Is 50mg of melatonin safe for adults?") == "SEMANTIC MISS"
    assert ask("Is 5 mg of melatonin safe for adults?") == "SEMANTIC HIT"  # the same number, written apart
    assert len(upstream.received) == 4
