"""Least-busy through a real gateway process and fake model servers on 127.0.0.1: health probes take a
target out within one interval and bring it back, a fast-failing target gets a handful of requests, the
server's own load report steers traffic, and the choice shows in /metrics and the request log."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fakes.model_server import ModelServer
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

INTERVAL = 0.5
# No test here needs a probe to time out (a target fails its probe with a 503), and on a loaded 2-core machine
# a 0.3 s timeout failed healthy targets now and then, which sent traffic where a test said it must not go.
TIMEOUT = 2.0
TAKEN_WITHIN = INTERVAL + 0.6  # a probe's verdict shows within one interval (plus the scrape's polling)


@pytest.fixture(scope="module")
def lb_gateway(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("least-busy"), env={
        "SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_PROBE_INTERVAL": str(INTERVAL),
        "SLUICEGATE_PROBE_TIMEOUT": str(TIMEOUT)}).start()
    yield process
    process.stop()


@pytest.fixture
def servers():
    started = [ModelServer().start(), ModelServer().start()]
    yield started
    for server in started:
        server.stop()


def least_busy(*servers: ModelServer) -> str:
    return json.dumps({"strategy": {"mode": "loadbalance", "policy": "least-busy"},
                       "targets": [{"provider": "openai", "api_key": "sk-test", "custom_host": s.v1}
                                   for s in servers]})


def chat(gateway: GatewayProcess, config: str, trace: str | None = None) -> httpx.Response:
    headers = {"x-portkey-config": config, **({"x-portkey-trace-id": trace} if trace else {})}
    return httpx.post(f"{gateway.v1}/chat/completions", headers=headers, timeout=10,
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def gauge(gateway: GatewayProcess, name: str, server: ModelServer) -> float | None:
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    pattern = rf'^{name}\{{[^}}]*target="{re.escape(server.v1)}"[^}}]*\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else None


def wait_for(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` held (polled every 20 ms); fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - started


def burst(gateway, config, count: int = 40, clients: int = 8) -> list[int]:
    """``count`` requests from ``clients`` concurrent clients: enough in flight that the idle-but-slower
    target is worth using (one request at a time always goes to the faster idle one)."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda _: chat(gateway, config).status_code, range(count)))


def warm(gateway, config, servers, count: int = 30) -> None:
    """Requests until both targets have been used (so the gateway knows, and probes, both)."""
    for _ in range(count):
        assert chat(gateway, config).status_code == 200
        if all(s.chats for s in servers):
            return
    pytest.fail("least-busy never used one of two idle targets")


def test_a_failed_probe_takes_the_target_out_within_one_interval_and_a_passing_one_brings_it_back(
        lb_gateway, servers):
    a, b = servers
    config = least_busy(a, b)
    warm(lb_gateway, config, servers)
    wait_for(lambda: gauge(lb_gateway, "sluicegate_target_healthy", a) == 1.0, 5)
    a.health_status = 503
    took = wait_for(lambda: gauge(lb_gateway, "sluicegate_target_healthy", a) == 0.0, 5)
    assert took <= TAKEN_WITHIN, took
    before = a.chats
    for _ in range(20):
        assert chat(lb_gateway, config).status_code == 200
    assert a.chats == before  # out of rotation: not one request
    a.health_status = 200
    took = wait_for(lambda: gauge(lb_gateway, "sluicegate_target_healthy", a) == 1.0, 5)
    assert took <= TAKEN_WITHIN, took
    a.chat_delay = b.chat_delay = 0.05
    assert burst(lb_gateway, config) == [200] * 40
    assert a.chats > before  # back by itself
    assert a.probes >= 3 and b.probes >= 3


def test_a_target_that_fails_fast_gets_at_most_a_handful_of_requests(lb_gateway, servers):
    a, b = servers
    b.chat_delay = 0.05  # the healthy one takes its time; the broken one answers 500 at once
    config = least_busy(a, b)
    warm(lb_gateway, config, servers)
    a.chat_status = 500  # its health probe still passes: only the requests tell
    for _ in range(30):  # until it has failed once: from then on it is known to fail
        chat(lb_gateway, config)
        if a.chat_failures_seen():
            break
    assert a.chat_failures_seen()
    a.chats = b.chats = 0
    with ThreadPoolExecutor(8) as pool:  # 8 concurrent clients, 80 requests: the idle-looking target is fast
        statuses = list(pool.map(lambda _: chat(lb_gateway, config).status_code, range(80)))
    assert a.chats <= 3, a.chats
    assert statuses.count(500) == a.chats and statuses.count(200) == 80 - a.chats


def test_the_servers_own_queue_report_steers_traffic(lb_gateway, servers):
    a, b = servers
    a.metrics_text = "llamacpp:requests_processing 1\nllamacpp:requests_deferred 40\n"
    b.metrics_text = "llamacpp:requests_processing 0\nllamacpp:requests_deferred 0\n"
    config = least_busy(a, b)
    warm(lb_gateway, config, servers)
    wait_for(lambda: gauge(lb_gateway, "sluicegate_target_queue", a) == 41.0, 5)
    before = a.chats
    for _ in range(20):
        assert chat(lb_gateway, config).status_code == 200
    assert a.chats == before  # 41 queued there, by its own account: everything goes to b
    a.metrics_text = None  # the report stops (404): after it goes stale, in-flight counts decide again
    wait_for(lambda: gauge(lb_gateway, "sluicegate_target_queue", a) is None, 10)
    a.chat_delay = b.chat_delay = 0.05
    assert burst(lb_gateway, config) == [200] * 40
    assert a.chats > before


def test_the_request_log_says_why_and_metrics_count_in_flight(lb_gateway, servers):
    a, b = servers
    config = least_busy(a, b)
    trace = new_trace()
    assert chat(lb_gateway, config, trace).status_code == 200
    record = LogApi(lb_gateway.url).one(trace)
    [attempt] = record["attempts"]
    routing = attempt["routing"]
    assert routing["policy"] == "least-busy" and routing["chosen"] == attempt["target_path"]
    assert routing["reason"] in ("tie", "lower score", "only candidate")
    assert {c["target"] for c in routing["compared"]} <= {"config.targets[0]", "config.targets[1]"}
    assert "sk-test" not in json.dumps(record)
    [used] = [s for s in servers if s.chats]
    assert attempt["host"] == used.v1
    assert gauge(lb_gateway, "sluicegate_target_in_flight", used) == 0.0  # nothing left open
    assert gauge(lb_gateway, "sluicegate_target_healthy", used) == 1.0


def test_weighted_is_unchanged_and_has_no_routing_note(lb_gateway, servers):
    a, b = servers
    config = json.dumps({"strategy": {"mode": "loadbalance"},
                         "targets": [{"provider": "openai", "api_key": "sk", "custom_host": s.v1} for s in servers]})
    trace = new_trace()
    assert chat(lb_gateway, config, trace).status_code == 200
    record = LogApi(lb_gateway.url).one(trace)
    assert record["attempts"][0]["routing"] is None
    time.sleep(INTERVAL * 2)
    assert a.probes == 0 and b.probes == 0  # weighted targets are never probed


def test_workers_share_their_in_flight_counts_through_redis(tmp_path, servers):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    a, b = servers
    a.chat_delay = b.chat_delay = 0.3
    before = set(client.scan_iter(match="sluicegate:inflight:*"))
    process = GatewayProcess(tmp_path / "gw", env={"SLUICEGATE_REDIS_URL": "redis://127.0.0.1:6379/0"},
                             args=("--workers", "2")).start(timeout=90)
    try:
        config = least_busy(a, b)
        assert burst(process, config, count=48, clients=12) == [200] * 48
        assert a.chats >= 8 and b.chats >= 8
        # Both workers publish their counts: one hash per target, one field per process that used it.
        def published() -> bool:
            keys = set(client.scan_iter(match="sluicegate:inflight:*")) - before
            fields = [set(client.hkeys(key)) for key in keys]
            return len(keys) == 2 and len(set().union(*fields)) == 2
        wait_for(published, 10)
    finally:
        process.stop()
        for key in set(client.scan_iter(match="sluicegate:inflight:*")) - before:
            client.delete(key)
        client.close()


def test_streams_count_in_flight_until_they_end(lb_gateway, servers):
    from tests.fakes.upstream import Reply, chat_chunks

    a, b = servers
    config = least_busy(a, b)
    # Each target's latency average starts from its warm-up sample: equal, dominant delays keep a few ms of
    # machine noise in one lone sample from making a target look several times slower, which would send
    # every stream below to the other one.
    a.chat_delay = b.chat_delay = 0.2
    warm(lb_gateway, config, servers)
    a.chat_delay = b.chat_delay = 0.0
    for server in servers:
        server.push(*[Reply(stream=chat_chunks("slow words here"), chunk_interval=0.4) for _ in range(4)])
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    def stream() -> bytes:
        with httpx.stream("POST", f"{lb_gateway.v1}/chat/completions", json=body, timeout=20,
                          headers={"x-portkey-config": config}) as response:
            assert response.status_code == 200
            return response.read()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(stream) for _ in range(4)]
        # While the four streams are open the gauges count all four, spread over both targets.
        wait_for(lambda: (gauge(lb_gateway, "sluicegate_target_in_flight", a) or 0)
                 + (gauge(lb_gateway, "sluicegate_target_in_flight", b) or 0) == 4.0, 5)
        assert gauge(lb_gateway, "sluicegate_target_in_flight", a) >= 1
        assert gauge(lb_gateway, "sluicegate_target_in_flight", b) >= 1
        assert all(b"[DONE]" in f.result() for f in futures)
    wait_for(lambda: (gauge(lb_gateway, "sluicegate_target_in_flight", a),
                      gauge(lb_gateway, "sluicegate_target_in_flight", b)) == (0.0, 0.0), 5)


def test_a_target_that_answered_slowly_once_is_tried_again_within_seconds(lb_gateway, servers):
    # The tester's scenario: two equally fast targets, one answers slowly for a moment, then is fast again.
    # Its latency figure changed only when a request went there, so requests one after another all went to
    # the other target (0 of 100) for good. Now its figure ages and is dropped after 8 s without a sample.
    a, b = servers
    config = least_busy(a, b)
    warm(lb_gateway, config, servers)
    a.chat_delay, b.chat_delay = 1.0, 0.3  # b slowed too, so that a burst queues there and a takes one
    before = a.chats
    for _ in range(10):  # (bounded: on a loaded machine a burst may still all go to b)
        assert burst(lb_gateway, config, count=4, clients=4) == [200] * 4
        if a.chats > before:
            break
    assert a.chats > before, "a never took a request of the bursts"
    a.chat_delay = b.chat_delay = 0.0
    slow_answered = time.monotonic()
    tried = a.chats
    for _ in range(140):  # one every 0.1 s or so, for at most 14 s
        assert chat(lb_gateway, config).status_code == 200
        if a.chats > tried or time.monotonic() - slow_answered > 14.0:
            break
        time.sleep(0.1)
    waited = time.monotonic() - slow_answered
    assert a.chats > tried, f"a was not tried again in {waited:.1f} s"
    assert waited <= 8.0 + 4.0, waited  # four half-lives of 2 s, and room for a loaded machine
