"""DNS rebinding: the gateway answers only for the Host names it serves, and says loudly at start-up when
it listens beyond loopback. Raw sockets set the Host header (and absolute-form targets) as a browser on a
rebound name, or a client addressing another server, would. A gateway listening beyond loopback runs
in a network namespace with only ``lo``, so nothing off the machine can reach it."""

from __future__ import annotations

import pytest

from tests.gateway import GatewayProcess
from tests.rawhttp import exchange, request
from tests.ssrf.harness import run_scenario

ADMIN = "admin-token-for-tests-0123456789"
CHAT = b'{"messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("hosts"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    yield process
    process.stop()


EXPOSED_HOSTS = {  # Host header → status, for a gateway on 0.0.0.0 with SLUICEGATE_ALLOWED_HOSTS set
    "gw.example.test": 200,
    "GW.example.test:443": 200,
    "api.corp.example.test": 200,
    "203.0.113.9:8787": 200,  # an IP literal (a load balancer's health check) is no rebinding
    "127.0.0.1": 200,
    "rebind.example.test": 421,
    "corp.example.test": 421,
}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> dict[str, dict]:
    """Auth mode → the report of a gateway listening on 0.0.0.0 inside a network namespace that has only
    ``lo`` (tests/netns.py): beyond loopback by its own judgement, reachable from nowhere but itself."""
    reports = {}
    for mode, hosts in (("auto", EXPOSED_HOSTS), ("off", {"127.0.0.1": 200})):
        plan = {"gateway": {"listen": "0.0.0.0", "env": {
                    "SLUICEGATE_AUTH": mode, "SLUICEGATE_ALLOWED_HOSTS": "gw.example.test, *.corp.example.test"}},
                "trap_ports": [],
                "requests": [{"id": host, "method": "GET", "path": "/v1/health", "headers": {"host": host}}
                             for host in hosts]}
        reports[mode] = run_scenario(plan, tmp_path_factory.mktemp(f"exposed-{mode}"), addresses=[], names={})
    return reports


def assert_misdirected(response, name):
    assert response.status == 421, response.head
    assert "application/json" in response.head.lower()
    message = response.json()["message"]
    assert message.startswith(f"Host '{name}' is not served by this gateway")
    assert "SLUICEGATE_ALLOWED_HOSTS" in message


@pytest.mark.parametrize(("method", "path", "headers", "body"), [
    ("GET", "/v1/health", {}, b""),
    ("POST", "/v1/chat/completions", {"x-portkey-provider": "openai", "content-type": "application/json"}, CHAT),
    ("GET", "/v1/models", {"x-portkey-provider": "openai"}, b""),
    ("GET", "/admin/api/providers", {"authorization": f"Bearer {ADMIN}"}, b""),
    ("GET", "/metrics", {}, b""),
    ("GET", "/nope", {}, b""),
])
def test_a_rebound_dns_name_is_refused_everywhere(gw, method, path, headers, body):
    response = exchange(gw.port, request(method, path, headers, body, host=f"rebind.example.test:{gw.port}"))
    assert_misdirected(response, f"rebind.example.test:{gw.port}")


@pytest.mark.parametrize(("method", "path", "headers", "body"), [
    ("GET", "/livez", {}, b""),
    ("POST", "/v1/chat/completions", {"x-portkey-provider": "openai", "content-type": "application/json"}, CHAT),
    ("GET", "/admin/api/providers", {"authorization": f"Bearer {ADMIN}"}, b""),
])
@pytest.mark.parametrize("raw_host", [b"\x9f", b"a\x80b.example.test"])
def test_a_host_that_is_not_utf8_is_refused_not_a_500(gw, method, path, headers, body, raw_host):
    # The refusal echoed the name, and the undecodable byte made its JSON fail: every route answered 500.
    sent = request(method, path, headers, body, host="HOSTNAME").replace(b"HOSTNAME", raw_host)
    response = exchange(gw.port, sent)
    assert_misdirected(response, raw_host.decode("utf-8", "replace"))
    assert "from from" not in gw.log()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST."])
def test_loopback_names_are_answered_with_any_port(gw, host):
    for suffix in ("", f":{gw.port}", ":1"):
        assert exchange(gw.port, request("GET", "/v1/health", host=host + suffix)).status == 200


def test_an_absolute_form_target_names_its_host_too(gw):
    response = exchange(gw.port, request("GET", "http://rebind.example.test/v1/health"))
    assert_misdirected(response, "rebind.example.test")
    assert exchange(gw.port, request("GET", f"http://127.0.0.1:{gw.port}/v1/health")).status == 200


def test_on_loopback_an_ip_beyond_loopback_is_refused_and_nothing_is_announced(gw):
    assert_misdirected(exchange(gw.port, request("GET", "/v1/health", host="192.0.2.7")), "192.0.2.7")
    assert "WARNING" not in gw.log()


@pytest.mark.netns
def test_beyond_loopback_the_start_up_says_so_and_warns_loudly_only_without_keys(exposed):
    noted = exposed["auto"]["log"]
    assert "NOTE: sluicegate listens on 0.0.0.0, beyond loopback; /v1 requires a gateway API key" in noted
    assert "SLUICEGATE_ALLOWED_HOSTS (gw.example.test, *.corp.example.test)" in noted
    assert "WARNING" not in noted
    warned = exposed["off"]["log"]
    assert "WARNING: sluicegate listens on 0.0.0.0, beyond loopback, with SLUICEGATE_AUTH=off" in warned
    assert "anyone who can reach port" in warned and "every credential stored in the vault" in warned


@pytest.mark.netns
@pytest.mark.parametrize(("host", "status"), list(EXPOSED_HOSTS.items()))
def test_beyond_loopback_listed_names_and_ip_addresses_are_answered(exposed, host, status):
    assert exposed["auto"]["cases"][host]["status"] == status
