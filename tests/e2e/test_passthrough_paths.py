"""Passthrough paths stay below the provider's base path: a catalog @slug's stored credential must never
reach another path of its host (``/v1/../../leak``, ``%2e%2e``, encoded slashes, absolute-form targets).

Raw sockets send the targets, since HTTP clients normalise them before sending; the fake upstream records
the path of every request it receives, so an escape would show there.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_catalog import cli, wait_until_usable
from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess
from tests.rawhttp import exchange, request

ADMIN = "admin-token-for-tests-0123456789"
STORED = "Bearer stored-secret-7c1e"
SLUG = {"x-portkey-provider": "@base-path-llm"}


@pytest.fixture(scope="module")
def llm():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, llm):
    process = GatewayProcess(tmp_path_factory.mktemp("paths"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    cli(process, "providers", "add", "base-path-llm", "--spec", "openai", "--custom-host", llm.v1,
        "--header", f"Authorization: {STORED}")
    wait_until_usable(process, "@base-path-llm")
    yield process
    process.stop()


@pytest.fixture
def upstream(llm):
    llm.reset()
    return llm


ESCAPES = [
    "/v1/../../../leak/headers",
    "/v1/../leak",
    "/v1/models/../../leak",
    "/v1/%2e%2e/%2e%2e/leak/headers",
    "/v1/%2E%2E/leak",
    "/v1/.%2e/leak",
    "/v1/%2e./leak?q=1",
    "/v1/a/./../../leak",
]
SEPARATORS = [
    "/v1/models%2f..%2f..%2fleak",
    "/v1/rerank/..%2F..%2Fleak",
    "/v1/a%5c..%5c..%5cleak",
]


@pytest.mark.parametrize("target", ESCAPES + SEPARATORS)
def test_a_path_that_leaves_the_base_path_is_refused(gw, upstream, target):
    response = exchange(gw.port, request("GET", target, SLUG))
    assert response.status == 400, response.head
    message = response.json()["message"]
    assert message.startswith("Invalid path:")
    assert ("climb above /v1" in message) if target in ESCAPES else ("encoded slash" in message)
    assert upstream.received == []


@pytest.mark.parametrize("target", [
    "http://127.0.0.1/v1/../../leak/headers",
    "http://127.0.0.1/v1/%2e%2e/%2e%2e/leak",
    "http://127.0.0.1/v1/models%2f..%2f..%2fleak",
])
def test_an_absolute_form_target_cannot_leave_the_base_path(gw, upstream, target):
    response = exchange(gw.port, request("GET", target, SLUG))
    assert response.status in (400, 404), response.head
    assert response.head.lower().count("application/json") == 1
    assert upstream.received == []


@pytest.mark.parametrize(("target", "arrives_as"), [
    ("/v1/models", "/v1/models"),
    ("/v1/a/../models", "/v1/models"),
    ("/v1/./models/%2e/x/..", "/v1/models/"),
    ("/v1/models?next=../../x", "/v1/models"),
])
def test_dot_segments_below_the_base_path_are_resolved_before_forwarding(gw, upstream, target, arrives_as):
    response = exchange(gw.port, request("GET", target, SLUG))
    assert response.status == 200, response.head
    assert [r.path for r in upstream.received] == [arrives_as]
    assert upstream.received[0].headers["authorization"] == STORED


# Paths beside Portkey's Admin API under /v1 (a trailing slash, a segment more, a method it does not take).
# They were proxied to the provider, and their bodies, with an integration's key, logged in clear.
ADMIN_NEAR_MISSES = [
    ("PUT", "/v1/integrations/"),
    ("POST", "/v1/integrations/some-slug"),
    ("PUT", "/v1/providers/some-slug/more"),
    ("DELETE", "/v1/configs/"),
    ("PATCH", "/v1/configs"),
    ("POST", "/v1/api-keys"),
    ("PUT", "/v1/api-keys/organisation/service"),
    ("GET", "/v1/admin/workspaces/ws/members"),
    ("POST", "/v1/admin"),
    ("DELETE", "/v1/audit-logs/1"),
    # Spellings the router does not match to the reserved routes, which a server behind the gateway reads as
    # one of them once it decodes and normalises the path: they were proxied.
    ("POST", "/v1/./admin/x"),
    ("POST", "/v1/x/../admin/x"),
    ("POST", "/v1/%2e/configs"),
    ("POST", "//v1/admin/x"),
    ("POST", "/v1//admin/x"),
    ("POST", "/v1/admin%2Fx"),
    ("POST", "/v1/configs;x"),
    ("POST", "/v1/api-keys%3Fx"),
    ("POST", "/v1/Integrations"),
]
ADMIN_SECRET = "sk-integration-secret-5d2a"


def test_a_path_beside_the_admin_api_is_not_proxied_or_logged(gw, upstream):
    body = b'{"name": "x", "key": "' + ADMIN_SECRET.encode() + b'"}'
    for method, target in ADMIN_NEAR_MISSES:
        response = exchange(gw.port, request(method, target, {**SLUG, "content-type": "application/json"}, body))
        assert response.status in (404, 405), (method, target, response.head)
        assert "application/json" in response.head.lower()
    assert upstream.received == []
    gw.stop()  # the request log is written out: nothing of the bodies may be in it
    try:
        for path in gw.data_dir.rglob("*"):
            assert not path.is_file() or ADMIN_SECRET.encode() not in path.read_bytes(), path
        assert ADMIN_SECRET not in gw.log()
    finally:
        gw.start()
