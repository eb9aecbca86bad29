"""A timeout's message names the timeout that fired and where it came from, and its answer says whether the
SDK's automatic retry should follow.

Without a request timeout, the gateway's own read timeout (SLUICEGATE_UPSTREAM_READ_TIMEOUT, 600 s by
default) used to be reported as "the timeout sent in the request: 0ms". A 408 of the request's own timeout
(header or config) used to leave the SDK free to retry it, which waits out that timeout again.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    gateway = GatewayProcess(tmp_path_factory.mktemp("timeouts"),
                             env={"SLUICEGATE_UPSTREAM_READ_TIMEOUT": "0.5"}).start()
    yield gateway
    gateway.stop()


def answer(gateway, upstream, **headers) -> httpx.Response:
    response = httpx.post(f"{gateway.v1}/chat/completions", json=BODY, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1, **headers})
    assert response.status_code == 408, response.text
    return response


def call(gateway, upstream, **headers) -> dict:
    return answer(gateway, upstream, **headers).json()["error"]


def test_the_gateways_read_timeout_is_named_with_its_setting(impatient, upstream):
    upstream.push(Reply(delay=2.0))
    error = call(impatient, upstream)
    assert error["type"] == "timeout_error"
    assert error["message"] == ("The upstream sent nothing for 0.5 s "
                                "(SLUICEGATE_UPSTREAM_READ_TIMEOUT; no request timeout was set)")


def test_a_configs_request_timeout_is_named_as_the_configs(impatient, upstream):
    upstream.push(Reply(delay=2.0))
    config = orjson.dumps({"provider": "openai", "custom_host": upstream.v1, "request_timeout": 200}).decode()
    error = call(impatient, upstream, **{"x-portkey-config": config})
    assert error["message"] == "Request exceeded the request_timeout of the config: 200ms"


def test_the_request_header_keeps_portkeys_message(impatient, upstream):
    upstream.push(Reply(delay=2.0))
    error = call(impatient, upstream, **{"x-portkey-request-timeout": "200"})
    assert error["message"] == "Request exceeded the timeout sent in the request: 200ms"


def test_only_the_requests_own_timeout_tells_the_sdk_not_to_retry(impatient, upstream):
    upstream.push(Reply(delay=2.0), Reply(delay=2.0), Reply(delay=2.0))
    config = orjson.dumps({"provider": "openai", "custom_host": upstream.v1, "request_timeout": 200}).decode()
    assert answer(impatient, upstream, **{"x-portkey-request-timeout": "200"}).headers["x-should-retry"] == "false"
    assert answer(impatient, upstream, **{"x-portkey-config": config}).headers["x-should-retry"] == "false"
    # The gateway's own read timeout: an upstream that was slow once may answer the SDK's retry.
    assert "x-should-retry" not in answer(impatient, upstream).headers
