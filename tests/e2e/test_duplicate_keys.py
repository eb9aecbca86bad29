"""Duplicate JSON keys: what the gateway decided on is what the upstream receives.

orjson (like most parsers) keeps the last of two equal keys; an upstream may keep the first. A client could
then pass the catalog's model allow-list with one ``model`` and have the upstream run another, or stream
where the gateway relays a JSON body. The gateway forwards the body it parsed, so there is one view.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_catalog import cli, wait_until_usable
from tests.fakes.upstream import FakeUpstream

ADMIN = "admin-token-for-tests-0123456789"
MESSAGES = b'"messages":[{"role":"user","content":"hi"}]'


@pytest.fixture(scope="module")
def llm():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, llm):
    from tests.gateway import GatewayProcess

    process = GatewayProcess(tmp_path_factory.mktemp("dupes"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN}).start()
    cli(process, "providers", "add", "narrow-llm", "--spec", "openai", "--custom-host", llm.v1,
        "--header", "Authorization: Bearer stored-5e5e", "--model", "cheap-model")
    wait_until_usable(process, "@narrow-llm")
    yield process
    process.stop()


@pytest.fixture
def upstream(llm):
    llm.reset()
    return llm


def post(gw, body: bytes, **headers) -> httpx.Response:
    return httpx.post(f"{gw.v1}/chat/completions", content=body, timeout=30,
                      headers={"content-type": "application/json", **headers})


def test_the_model_checked_against_the_allow_list_is_the_only_one_sent(gw, upstream):
    body = b'{"model":"expensive-model",' + MESSAGES + b',"model":"cheap-model"}'
    response = post(gw, body, **{"x-portkey-provider": "@narrow-llm"})
    assert response.status_code == 200, response.text
    assert upstream.last.body.count(b'"model"') == 1
    assert upstream.last.json()["model"] == "cheap-model"


def test_a_slug_in_the_second_model_routes_and_the_upstream_sees_that_one(gw, upstream):
    body = b'{"model":"@narrow-llm/expensive-model",' + MESSAGES + b',"mod\\u0065l":"@narrow-llm/cheap-model"}'
    response = post(gw, body)
    assert response.status_code == 200, response.text
    assert upstream.last.body.count(b'"model"') == 1 and b"mod\\u0065l" not in upstream.last.body
    assert upstream.last.json()["model"] == "cheap-model"


@pytest.mark.parametrize(("first", "last"), [(b"true", b"false"), (b"false", b"true")])
def test_stream_is_decided_once(gw, upstream, first, last):
    body = b'{"stream":' + first + b',"model":"cheap-model",' + MESSAGES + b',"stream":' + last + b"}"
    response = post(gw, body, **{"x-portkey-provider": "@narrow-llm"})
    assert response.status_code == 200, response.text
    streamed = last == b"true"
    assert response.headers["content-type"].startswith("text/event-stream" if streamed else "application/json")
    assert upstream.last.body.count(b'"stream"') == 1
    assert upstream.last.json()["stream"] is streamed


def test_a_body_nested_too_deeply_to_forward_is_a_400(gw, upstream):
    body = b'{"model":"cheap-model",' + MESSAGES + b',"x":' + b"[" * 300 + b"]" * 300 + b"}"
    response = post(gw, body, **{"x-portkey-provider": "@narrow-llm"})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "Request body is nested too deeply: at most 254 levels"
    assert upstream.received == []
