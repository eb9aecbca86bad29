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
